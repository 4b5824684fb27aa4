"""Textured mesh rendering without antialiasing: mesh + UVs + texture + camera → image and coverage mask."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvertAvatarError
from .camera import Camera
from .interpolate import interpolate, sample_image, vertex_normals
from .rasterize import Fragments, as_triangles, rasterize


def _bad(message: str, hint: str) -> InvertAvatarError:
    return InvertAvatarError("invalid_render_input", message, hint)


def uv_to_texture_pixels(uv: torch.Tensor, texture_height: int, texture_width: int) -> torch.Tensor:
    """Continuous texture pixel positions (x, y down) of UVs (origin bottom-left): x = u·W, y = (1 − v)·H."""
    return torch.stack([uv[..., 0] * texture_width, (1.0 - uv[..., 1]) * texture_height], -1)


def headlight_shading(vertices: torch.Tensor, triangles: torch.Tensor | np.ndarray, fragments: Fragments,
                      camera: Camera, ambient: float = 0.35) -> torch.Tensor:
    """Lambert factor (B,H,W,1) for a light at the camera: ``ambient + (1 − ambient) · max(0, n · l)``.

    ``vertices`` (B,V,3) world positions; the normals are the interpolated, renormalised vertex normals.
    """
    both = interpolate(torch.cat([vertex_normals(vertices, triangles), vertices], -1), fragments, triangles)
    normals, positions = both[..., :3], both[..., 3:]
    centre = camera.center
    centre = centre[:, None, None, :] if centre.ndim == 2 else centre
    to_light = centre - positions
    cosine = (torch.nn.functional.normalize(normals, dim=-1) * torch.nn.functional.normalize(to_light, dim=-1))
    lambert = cosine.sum(-1, keepdim=True).clamp(min=0.0)
    return ambient + (1.0 - ambient) * lambert


def render_textured(vertices: torch.Tensor, triangles: torch.Tensor | np.ndarray, uv: torch.Tensor,
                    uv_triangles: torch.Tensor | np.ndarray, texture: torch.Tensor, camera: Camera, *,
                    background: torch.Tensor | float = 0.0, cull_backfaces: bool = True, shading: bool = False,
                    ambient: float = 0.35, backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a textured mesh: returns ``image`` (B,H,W,C) and ``mask`` (B,H,W) float in {0, 1}.

    ``vertices`` (B,V,3) or (V,3) world positions in metres; ``triangles`` (T,3) index them; ``uv`` (U,2) with
    ``uv_triangles`` (T,3) (face t of both lists is the same face); ``texture`` (Ht,Wt,C) or (B,Ht,Wt,C) float,
    row 0 = v = 1 like an image file. ``background`` is a scalar, a (C,) colour or a (B,H,W,C) image.
    The colour is the bilinear texture sample at the perspective-correct UV of each pixel centre, optionally times a
    headlight Lambert factor (``shading``). Differentiable w.r.t. vertices, camera, UVs and texture; the mask is not.
    """
    verts = vertices[None] if torch.is_tensor(vertices) and vertices.ndim == 2 else vertices
    if not torch.is_tensor(verts) or verts.ndim != 3 or verts.shape[-1] != 3:
        raise _bad("vertices must have shape (B, V, 3) or (V, 3).", "Pass world-space vertex positions in metres.")
    if not torch.is_tensor(texture) or texture.ndim not in (3, 4) or not texture.dtype.is_floating_point:
        raise _bad("texture must be a float tensor (H, W, C) or (B, H, W, C) in [0, 1].",
                   "Convert a uint8 image with torch.from_numpy(img).float() / 255.")
    uv_t = torch.as_tensor(uv, dtype=verts.dtype, device=verts.device)
    triangles = as_triangles(triangles, verts.shape[1], verts.device)
    uv_triangles = as_triangles(uv_triangles, uv_t.shape[0], verts.device)
    screen = camera.project(verts)
    fragments = rasterize(screen, triangles, camera.height, camera.width, cull_backfaces=cull_backfaces,
                          backend=backend)
    pix_uv = interpolate(uv_t, fragments, uv_triangles)  # (B,H,W,2)
    tex = texture.to(device=verts.device)
    tex_b = tex if tex.ndim == 4 else tex[None]
    coords = uv_to_texture_pixels(pix_uv, tex_b.shape[1], tex_b.shape[2])
    if tex_b.shape[0] == 1 and coords.shape[0] > 1:
        tex_b = tex_b.expand(coords.shape[0], *tex_b.shape[1:])
    colour = sample_image(tex_b, coords.to(tex_b.dtype), padding="border")
    if shading:
        world = verts.expand(screen.shape[0], -1, -1)
        colour = colour * headlight_shading(world, triangles, fragments, camera, ambient).to(colour.dtype)
    mask = fragments.mask.to(colour.dtype)
    bg = torch.as_tensor(background, dtype=colour.dtype, device=colour.device)
    image = colour * mask[..., None] + bg * (1.0 - mask[..., None])
    return image, mask


def camera_normals(vertices: torch.Tensor, triangles: torch.Tensor | np.ndarray, camera: Camera, *,
                   backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel unit surface normals in camera space (B,H,W,3) and the coverage mask (B,H,W) of a mesh.

    What a lighting estimate needs next to a render (texture/delight.py): the normal each pixel shows, with the
    camera's axes (OpenCV: x right, y down, z forward), back faces culled as in :func:`render_textured`.
    """
    verts = vertices[None] if vertices.ndim == 2 else vertices
    triangles = as_triangles(triangles, verts.shape[1], verts.device)
    fragments = rasterize(camera.project(verts), triangles, camera.height, camera.width, cull_backfaces=True,
                          backend=backend)
    normals = interpolate(vertex_normals(camera.world_to_camera(verts), triangles), fragments, triangles)
    return torch.nn.functional.normalize(normals, dim=-1), fragments.mask
