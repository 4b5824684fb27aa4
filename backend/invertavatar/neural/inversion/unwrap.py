"""Pixel alignment for the texture branch: where every UV texel of the neural texture lies in an input image.

For a posed head and its camera this rasterises the UV layout (the same UVs and triangles as the mesh condition)
and interpolates each vertex's image position, giving a ``grid_sample`` grid (P, P, 2); a texel is visible when its
triangle is textured, faces the camera (normal . view > 0.1, the reference's threshold) and passes a depth test
against the head rendered from that camera.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from invertavatar.neural.prior.condition import IctCondition
from invertavatar.render import Camera, interpolate, rasterize
from invertavatar.render.interpolate import vertex_normals
from invertavatar.render.rasterize import rasterize_uv

DEPTH_TOLERANCE = 0.01  # metres: a texel this far behind the visible surface counts as hidden


def unwrap_grid(condition: IctCondition, vertices: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """``vertices`` (V, 3) posed head in the camera's world (metres) -> grid (P, P, 2), visibility (P, P)."""
    res = condition.config.plane_resolution
    tris = torch.as_tensor(condition.triangles, dtype=torch.long)
    fragments = rasterize_uv(condition.uv, condition.uv_triangles, res)
    screen = camera.project(vertices[None])  # (1, V, 3)
    width, height = float(camera.width), float(camera.height)
    grid_xy = torch.stack([screen[0, :, 0] / width * 2 - 1, screen[0, :, 1] / height * 2 - 1], dim=-1)
    normals = vertex_normals(vertices, tris)
    cam_normals = normals @ torch.as_tensor(camera.R, dtype=vertices.dtype).reshape(3, 3).T
    cam_points = camera.world_to_camera(vertices[None])[0]
    facing = -(F.normalize(cam_points, dim=-1) * cam_normals).sum(-1, keepdim=True)
    attributes = torch.cat([grid_xy, screen[0, :, 2:3], facing], dim=-1)
    texel = interpolate(attributes, fragments, tris)[0]  # (P, P, 4)
    # Depth test against the head seen from the camera.
    view = rasterize(screen, tris, int(camera.height), int(camera.width))
    depth_map = torch.where(view.mask, view.depth, torch.full_like(view.depth, 1e6))[:, None]
    # The farthest depth of the 3x3 neighbourhood: a texel and its pixel centre never line up exactly.
    depth_map = F.max_pool2d(depth_map, 3, 1, 1)
    seen_depth = F.grid_sample(depth_map, texel[None, ..., :2], mode="nearest", align_corners=False)[0, 0]
    covered = fragments.mask[0]
    textured = condition.triangle_alpha[fragments.tri_id[0].clamp(min=0)] > 0.5
    visible = covered & textured & (texel[..., 3] > 0.1) & (texel[..., 2] <= seen_depth + DEPTH_TOLERANCE)
    grid = torch.where(covered[..., None], texel[..., :2], torch.full_like(texel[..., :2], -2.0))
    return grid, visible.float()
