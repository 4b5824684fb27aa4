"""Robust multi-frame fusion: more frames of one view lower the texture's error, and outliers are outvoted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.pipeline.synthetic import render_view
from invertavatar.render import Camera
from invertavatar.texture import TextureFusion

SIZE, TILE = 256, 128


@pytest.fixture(scope="module")
def view(ict_model, ground_truth, known_albedo):
    """One frontal render showing the texture exactly (no shading), its camera and the head's vertices."""
    neutral = np.zeros(ict_model.n_expression, np.float32)
    rendered = render_view(ict_model, ground_truth["identity"], neutral, (0.15, 0.05, 0.0), known_albedo, size=SIZE,
                           shading=False)
    k = torch.tensor([[rendered.focal, 0, SIZE / 2], [0, rendered.focal, SIZE / 2], [0, 0, 1.0]])
    camera = Camera(k, torch.from_numpy(rendered.rotation).float(), torch.from_numpy(rendered.translation).float(),
                    SIZE, SIZE)
    vertices = ict_model.evaluate(torch.from_numpy(ground_truth["identity"])[None],
                                  torch.from_numpy(neutral)[None])[0].numpy()
    return rendered.image, camera, vertices


def _degraded(image: np.ndarray, rng: np.random.Generator, noise: float, blocks: float) -> np.ndarray:
    """Sensor noise plus wrong 8×8 blocks (compression artefacts, a passing hand) on a share of the blocks."""
    out = image.astype(np.float32) / 255 + rng.normal(0, noise, image.shape).astype(np.float32)
    for y in range(0, image.shape[0], 8):
        for x in range(0, image.shape[1], 8):
            if rng.uniform() < blocks:
                out[y:y + 8, x:x + 8] += rng.uniform(-0.45, 0.45, 3).astype(np.float32)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _fuse(model, images, camera, vertices, robust: bool, batch: bool = False) -> TextureFusion:
    fusion = TextureFusion(model, TILE)
    fusion.robust = robust
    if batch:  # as the pipeline fuses a clip's keyframes: judged against the plain mean of the whole batch
        fusion.reference = fusion.snapshot()
        for image in images:
            fusion.reference.add_frame(image, vertices, camera, delight=False)
    for image in images:
        fusion.add_frame(image, vertices, camera, delight=False)
    return fusion


def _error(fusion: TextureFusion, reference: TextureFusion) -> float:
    """Mean absolute colour error (0..1) over the face texels the clean frame saw."""
    colour, weight = fusion.mean_colour("face")
    truth, seen = reference.mean_colour("face")
    mask = (seen > 0) & (weight > 0)
    return float(np.abs(colour[mask] - truth[mask]).mean())


def test_more_frames_of_the_same_view_lower_the_error_and_outliers_are_outvoted(ict_model, view):
    image, camera, vertices = view
    reference = _fuse(ict_model, [image], camera, vertices, robust=False)
    rng = np.random.default_rng(3)
    frames = [_degraded(image, rng, noise=0.04, blocks=0.12) for _ in range(8)]
    robust = [_error(_fuse(ict_model, frames[:n], camera, vertices, True), reference) for n in (1, 2, 4, 8)]
    batch = [_error(_fuse(ict_model, frames[:n], camera, vertices, True, batch=True), reference) for n in (1, 2, 4, 8)]
    plain = [_error(_fuse(ict_model, frames[:n], camera, vertices, False), reference) for n in (1, 2, 4, 8)]
    print("running", robust, "batch", batch, "plain", plain)
    assert robust[0] == pytest.approx(plain[0])  # one frame: nothing to judge it against
    for errors in (plain, robust, batch):
        assert errors[3] < errors[2] < errors[1] < errors[0]  # more frames of the same view: lower error
    assert robust[3] < 0.95 * plain[3]  # the running judge outvotes later frames' wrong blocks
    assert batch[3] < 0.8 * plain[3]  # the batch judge outvotes every frame's


def test_agreeing_frames_keep_their_weight(ict_model, view):
    """Clean copies of one frame: the robust weights change nothing (no bias towards the first frame)."""
    image, camera, vertices = view
    robust = _fuse(ict_model, [image] * 3, camera, vertices, True)
    plain = _fuse(ict_model, [image] * 3, camera, vertices, False)
    for name in robust.weight_sum:
        assert torch.allclose(robust.weight_sum[name], plain.weight_sum[name], rtol=1e-4, atol=1e-6)
