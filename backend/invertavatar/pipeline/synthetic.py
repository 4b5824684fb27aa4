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


def view_camera(yaw_pitch_roll: tuple[float, ...], size: int = 512, focal_ratio: float = 1.6,
                distance: float = 0.75) -> Camera:
    """The camera :func:`render_view` sees the model-space head through, turned by yaw/pitch/roll (radians)."""
    yaw, pitch, roll = (float(a) for a in yaw_pitch_roll)
    turn = (axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0])) @ axis_angle_to_matrix(torch.tensor([pitch, 0.0, 0.0]))
            @ axis_angle_to_matrix(torch.tensor([0.0, 0.0, roll])))
    focal = focal_ratio * size
    k = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    return Camera(k, FLIP @ turn, torch.tensor([0.0, 0.02, distance]), size, size)


def render_view(model: HeadModel, identity: np.ndarray, expression: np.ndarray, yaw_pitch_roll: tuple[float, ...],
                albedo: np.ndarray, size: int = 512, focal_ratio: float = 1.6, distance: float = 0.75,
                background: float = 0.55, shading: bool = True,
                hair: tuple[dict, dict | None] | None = None) -> SyntheticView:
    """Render the textured head (atlas ``albedo``) turned by yaw/pitch/roll (radians) at ``distance`` metres.

    With ``shading`` a headlight Lambert term darkens turned-away surfaces; without it every pixel shows the texture
    exactly, which is what texture-fusion tests compare against. ``hair`` (hair/guides.npz arrays in the neutral
    frame of ``identity``, e.g. ``render.synthetic_hair.synthetic_groom``, and a hair.json) is drawn as the preview
    draws a bundle's hair (render/hair.py: densified strands, ribbons in the head's z-buffer); unshaded, every hair
    pixel is its strand's root-to-tip colour. Hair strands follow the neutral head only: give no expression with it.
    """
    with torch.no_grad():
        vertices = model.evaluate(torch.from_numpy(np.asarray(identity, np.float32))[None],
                                  torch.from_numpy(np.asarray(expression, np.float32))[None])[0]
        camera = view_camera(yaw_pitch_roll, size, focal_ratio, distance)
        rotation, translation, focal = camera.R, camera.t, focal_ratio * size
        uv, face_uv = atlas_uvs(model)
        from ..headmodel.base import split_polygons

        _, _, uv_triangles = split_polygons(model.faces, face_uv)
        # Translucent overlays (eye occlusion, tear film, lashes) would render as opaque patches: leave them out.
        slots = np.array([slot_of_material(n) for n in model.material_names])[model.face_material[model.triangle_face]]
        solid = ~np.isin(slots, list(OVERLAY_SLOTS))
        texture = torch.from_numpy(np.array(albedo, dtype=np.float32)) / 255.0
        if hair is None:
            image, _ = render_textured(vertices, model.triangles[solid], torch.from_numpy(uv), uv_triangles[solid],
                                       texture, camera, background=background, shading=shading, ambient=0.6)
        else:
            image = _render_with_hair(model, identity, vertices, solid, uv, uv_triangles, texture, camera, hair,
                                      background, shading)
    picture = (image[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    return SyntheticView(picture, rotation.numpy(), translation.numpy(), focal, np.asarray(expression, np.float32))


def _render_with_hair(model, identity, vertices, solid, uv, uv_triangles, texture, camera, hair, background,
                      shading) -> torch.Tensor:
    from ..render.hair import (
        build_strands,
        preview_strand_count,
        render_textured_with_hair,
        strand_ribbons,
    )
    from .avatar_mesh import mesh_arrays

    guides, params = hair
    strands = build_strands(guides, mesh_arrays(model, identity), params,
                            preview_strand_count(camera.width, camera.height))
    points = torch.from_numpy(strands.points)
    ribbons, ribbon_triangles, colour = strand_ribbons(strands, points, camera, shading=shading, ambient=0.6)
    return render_textured_with_hair(vertices, model.triangles[solid], torch.from_numpy(uv), uv_triangles[solid],
                                     texture, camera, ribbons, ribbon_triangles, colour, background=background,
                                     shading=shading, ambient=0.6)


def bald_albedo(model: HeadModel, albedo: np.ndarray) -> np.ndarray:
    """``albedo`` with the cranium repainted in the default bald-scalp tone of its skin (texture/bake.py), as a bake
    paints a head it saw no hair on: a known bald head (and a known scalp under a synthetic groom) whatever hair
    colour the atlas was baked with. The skin is the median of the back-head tile away from the cranium."""
    import cv2

    from ..texture.atlas import SLOTS, slot_pixels
    from ..texture.bake import default_scalp_tone, scalp_weight

    out = np.array(albedo[..., :3], copy=True)
    rows, cols = slot_pixels(SLOTS["back_head"], out.shape[0])
    tile = out[rows, cols].astype(np.float32) / 255.0
    weight = cv2.resize(scalp_weight(model, "back_head", 256), tile.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    skin = np.median(tile[weight < 0.01], axis=0)
    painted = np.median(tile[weight > 0.99], axis=0)  # the tone the bake gave the cranium (the photo's hair)
    # The bake blended skin → painted tone by this weight: swapping the tone keeps the blend.
    tile = tile + weight[..., None] * (default_scalp_tone(skin) - painted)
    out[rows, cols] = (np.clip(tile, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out
