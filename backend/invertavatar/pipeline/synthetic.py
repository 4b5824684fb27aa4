"""Synthetic ground truth: renders of a head model with known identity, expression, pose, camera and texture.

Used by the tests and benchmarks of tracking and texturing (and by the evaluation harness): every quantity the
pipeline estimates is known exactly here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..headmodel import HeadModel
from ..render import Camera, axis_angle_to_matrix, render_textured
from ..texture import atlas_uvs
from ..texture.atlas import slot_of_material
from ..texture.fusion import OVERLAY_SLOTS

FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


@dataclass
class SyntheticView:
    image: np.ndarray  # (H, W, 3) uint8
    rotation: np.ndarray  # model → camera (OpenCV), like FrameFit.rotation
    translation: np.ndarray
    focal: float
    expression: np.ndarray


def render_view(model: HeadModel, identity: np.ndarray, expression: np.ndarray, yaw_pitch_roll: tuple[float, ...],
                albedo: np.ndarray, size: int = 512, focal_ratio: float = 1.6, distance: float = 0.75,
                background: float = 0.55, shading: bool = True) -> SyntheticView:
    """Render the textured head (atlas ``albedo``) turned by yaw/pitch/roll (radians) at ``distance`` metres.

    With ``shading`` a headlight Lambert term darkens turned-away surfaces; without it every pixel shows the texture
    exactly, which is what texture-fusion tests compare against.
    """
    with torch.no_grad():
        vertices = model.evaluate(torch.from_numpy(np.asarray(identity, np.float32))[None],
                                  torch.from_numpy(np.asarray(expression, np.float32))[None])[0]
        yaw, pitch, roll = (float(a) for a in yaw_pitch_roll)
        turn = (axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0])) @ axis_angle_to_matrix(torch.tensor([pitch, 0.0, 0.0]))
                @ axis_angle_to_matrix(torch.tensor([0.0, 0.0, roll])))
        rotation = FLIP @ turn
        translation = torch.tensor([0.0, 0.02, distance])
        focal = focal_ratio * size
        k = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
        camera = Camera(k, rotation, translation, size, size)
        uv, face_uv = atlas_uvs(model)
        from ..headmodel.base import split_polygons

        _, _, uv_triangles = split_polygons(model.faces, face_uv)
        # Translucent overlays (eye occlusion, tear film, lashes) would render as opaque patches: leave them out.
        slots = np.array([slot_of_material(n) for n in model.material_names])[model.face_material[model.triangle_face]]
        solid = ~np.isin(slots, list(OVERLAY_SLOTS))
        texture = torch.from_numpy(np.array(albedo, dtype=np.float32)) / 255.0
        image, _ = render_textured(vertices, model.triangles[solid], torch.from_numpy(uv), uv_triangles[solid],
                                   texture, camera, background=background, shading=shading, ambient=0.6)
    picture = (image[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    return SyntheticView(picture, rotation.numpy(), translation.numpy(), focal, np.asarray(expression, np.float32))
