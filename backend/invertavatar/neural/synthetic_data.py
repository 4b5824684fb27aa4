"""Synthetic training and test data for the inversion networks: renders of the ICT head with ground truth.

Each identity has random ICT identity coefficients and a procedural skin-like albedo (tone, low-frequency
blotches, fine pores, darker lips region). Each frame draws an expression, a head pose, a camera distance/focal and
a grey background level; it is rendered with ``invertavatar.pipeline.synthetic.render_view`` and carries the
prior's camera label, mesh condition and the UV unwrap grid/visibility, so every quantity is known exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from invertavatar.neural.config import PriorConfig
from invertavatar.neural.inversion.model import FrameBatch
from invertavatar.neural.inversion.frames import frame_from_fit
from invertavatar.neural.prior.condition import IctCondition
from invertavatar.pipeline.synthetic import render_view
from invertavatar.render import Camera

SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.72, 0.58], [0.78, 0.57, 0.42], [0.60, 0.42, 0.30],
                       [0.42, 0.29, 0.21]], np.float32)


@dataclasses.dataclass
class SyntheticIdentity:
    identity: np.ndarray  # ICT identity coefficients
    albedo: np.ndarray  # (A, A, 3) uint8 atlas


def procedural_albedo(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A skin-like atlas: a random tone, smooth blotches (redness, shading) and fine pore noise."""
    a, b = rng.choice(len(SKIN_TONES), 2)
    tone = SKIN_TONES[a] + rng.uniform(0, 1) * (SKIN_TONES[b] - SKIN_TONES[a])
    low = torch.from_numpy(rng.normal(0, 1, (1, 3, 6, 6)).astype(np.float32))
    low = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    red = np.array([0.05, -0.02, -0.02], np.float32)
    colour = (tone * (1 + 0.06 * low[..., :1]) + red * np.maximum(low[..., 1:2], 0)
              + rng.normal(0, 0.015, (size, size, 1)))
    return (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8)


def random_identity(model, rng: np.random.Generator, albedo_size: int = 256) -> SyntheticIdentity:
    return SyntheticIdentity(rng.normal(0, 0.8, model.n_identity).astype(np.float32), procedural_albedo(rng, albedo_size))


def random_expression(model, rng: np.random.Generator, active: int = 4, strength: float = 0.6) -> np.ndarray:
    weights = np.zeros(model.n_expression, np.float32)
    chosen = rng.choice(model.n_expression, active, replace=False)
    weights[chosen] = rng.uniform(0, strength, active)
    return weights


class SyntheticRenderer:
    """Renders frames of synthetic identities at the prior's output resolution, with all inversion inputs."""

    def __init__(self, model, config: PriorConfig, size: int | None = None) -> None:
        self.model, self.config = model, config
        self.size = size or config.output_resolution
        self.condition = IctCondition(model, config)

    def frame(self, person: SyntheticIdentity, rng: np.random.Generator, pose_range: float = 0.5,
              expression: np.ndarray | None = None, pose: tuple[float, float, float] | None = None) -> FrameBatch:
        """One frame (B = T = 1) with a random (or given) expression and pose."""
        if expression is None:
            expression = random_expression(self.model, rng)
        if pose is None:
            pose = (rng.uniform(-pose_range, pose_range), rng.uniform(-0.4, 0.4) * pose_range,
                    rng.uniform(-0.1, 0.1))
        distance = float(rng.uniform(0.7, 0.8))
        view = render_view(self.model, person.identity, expression, pose, person.albedo, size=self.size,
                           distance=distance, background=float(rng.uniform(0.2, 0.8)))
        with torch.no_grad():
            vertices = self.model.evaluate(torch.from_numpy(person.identity)[None],
                                           torch.from_numpy(expression)[None])[0]
        k = torch.tensor([[view.focal, 0, self.size / 2], [0, view.focal, self.size / 2], [0, 0, 1.0]])
        camera = Camera(k, torch.from_numpy(view.rotation).float(), torch.from_numpy(view.translation).float(),
                        self.size, self.size)
        return frame_from_fit(self.condition, view.image, vertices, camera)

    def clip(self, person: SyntheticIdentity, length: int, rng: np.random.Generator, pose_range: float = 0.5
             ) -> FrameBatch:
        """``length`` independent frames of one identity (B = 1, T = length)."""
        return cat_frames([self.frame(person, rng, pose_range) for _ in range(length)], dim=1)


def cat_frames(frames: list[FrameBatch], dim: int = 1) -> FrameBatch:
    """Concatenate frame batches along T (dim 1) or B (dim 0)."""
    def join(name: str) -> torch.Tensor | None:
        parts = [getattr(f, name) for f in frames]
        return None if any(p is None for p in parts) else torch.cat(parts, dim=dim)

    return FrameBatch(*(join(f.name) for f in dataclasses.fields(FrameBatch)))


def build_dataset(model, config: PriorConfig, identities: int, frames_per_identity: int, seed: int,
                  pose_range: float = 0.5) -> FrameBatch:
    """A fixed dataset: (identities, frames_per_identity) clips, one per identity."""
    rng = np.random.default_rng(seed)
    renderer = SyntheticRenderer(model, config)
    clips = []
    for _ in range(identities):
        person = random_identity(model, rng)
        clips.append(renderer.clip(person, frames_per_identity, rng, pose_range))
    return cat_frames(clips, dim=0)
