"""Photometric refinement: after the landmark fit, align the head so that the texture fused so far matches the frame.

The face is rendered through the differentiable rasterizer with the running texture (only texels seen before take
part) into a crop around the face, and the pose and expression follow the gradient of the colour difference, with
the landmark term kept so the fit cannot drift. It needs a texture, so the first frame of an avatar is fitted on
landmarks alone; later keyframes are refined before they are fused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..headmodel import HeadModel
from ..render import Camera, axis_angle_to_matrix, interpolate, rasterize, sample_image
from ..render.crop import crop_image, crop_intrinsics, square_crop
from ..texture.atlas import SLOTS, slot_of_material
from .tracker import FLIP

CROP = 192  # pixels: the face is rendered at about this size, whatever the photo's resolution


@dataclass
class PhotometricResult:
    rotation: np.ndarray
    translation: np.ndarray
    expression: np.ndarray
    error_before: float
    error_after: float


class FaceTexture:
    """The face tile's fused colour and a mask of texels seen so far, as tensors for rendering."""

    def __init__(self, model: HeadModel, colour: np.ndarray, weight: np.ndarray) -> None:
        slot = SLOTS["face"]
        materials = np.array([slot_of_material(m) for m in model.material_names])
        in_face = materials[model.face_material[model.triangle_face]] == "face"
        self.triangles = torch.from_numpy(model.triangles[in_face])
        self.uv_triangles = torch.from_numpy(model.triangle_uv[in_face])
        uv = model.uv.astype(np.float32).copy()
        uv[:, 0] = (uv[:, 0] - slot.source_u0) / slot.source_width
        self.uv = torch.from_numpy(uv)
        seen = (weight > 1e-3).astype(np.float32)[..., None]
        self.texture = torch.from_numpy(np.concatenate([colour, seen], -1).astype(np.float32))[None]

    @property
    def seen_fraction(self) -> float:
        return float(self.texture[..., 3].mean())


def refine_photometric(model: HeadModel, identity: np.ndarray, fit, image: np.ndarray, box: np.ndarray,
                       texture: FaceTexture, landmark_residual=None, steps: int = 12,
                       landmark_weight: float = 1.0) -> PhotometricResult:
    """Refine ``fit``'s pose and expression by the L1 colour difference to the fused texture (see module doc)."""
    k, _, _ = fit.camera_tensors()
    rect = square_crop(box)
    k_crop = crop_intrinsics(k.numpy(), rect, CROP)
    target = crop_image(image, rect, CROP)
    rotvec0 = torch.from_numpy(_rotvec_of(fit.rotation)).float()
    rotvec = rotvec0.clone().requires_grad_(True)
    translation = torch.from_numpy(fit.translation).float().requires_grad_(True)
    expression = torch.from_numpy(fit.expression).float().requires_grad_(True)
    identity_t = torch.from_numpy(np.asarray(identity, np.float32))[None]
    optimizer = torch.optim.Adam([{"params": [rotvec], "lr": 2e-3}, {"params": [translation], "lr": 5e-4},
                                  {"params": [expression], "lr": 1e-2}])

    def colour_error() -> torch.Tensor:
        rotation = FLIP @ axis_angle_to_matrix(rotvec)
        camera = Camera(k_crop, rotation, translation, CROP, CROP)
        vertices = model.evaluate(identity_t, expression[None])
        screen = camera.project(vertices)
        fragments = rasterize(screen, texture.triangles, CROP, CROP, cull_backfaces=True)
        uv = interpolate(texture.uv, fragments, texture.uv_triangles)
        size = texture.texture.shape[1]
        coords = torch.stack([uv[..., 0] * size, (1.0 - uv[..., 1]) * size], -1)
        rendered = sample_image(texture.texture, coords, padding="border")
        weight = fragments.mask[..., None].float() * (rendered[..., 3:] > 0.5).float()
        return ((rendered[..., :3] - target).abs() * weight).sum() / weight.sum().clamp(min=1.0) / 3.0

    with torch.no_grad():
        before = float(colour_error())
    for _ in range(steps):
        optimizer.zero_grad()
        loss = colour_error()
        if landmark_residual is not None:
            local = torch.cat([rotvec, translation, expression])
            loss = loss + landmark_weight * landmark_residual(local).square().sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            expression.clamp_(0.0, 1.0)
    with torch.no_grad():
        after = float(colour_error())
        rotation = (FLIP @ axis_angle_to_matrix(rotvec)).numpy()
    if after >= before:  # never make a fit worse
        return PhotometricResult(fit.rotation, fit.translation, fit.expression, before, before)
    return PhotometricResult(rotation, translation.detach().numpy(), expression.detach().numpy(), before, after)


def _rotvec_of(rotation: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues((FLIP.numpy().astype(np.float64) @ rotation))[0].ravel()
