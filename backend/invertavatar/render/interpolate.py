"""Differentiable per-pixel attributes: interpolation over fragments, vertex normals, bilinear image sampling."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvertAvatarError
from .rasterize import Fragments, as_triangles


def _bad(message: str, hint: str) -> InvertAvatarError:
    return InvertAvatarError("invalid_render_input", message, hint)


def interpolate(attributes: torch.Tensor, fragments: Fragments,
                triangles: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Interpolate per-vertex attributes over the covered pixels: (B,H,W,C), zero where no triangle is.

    ``attributes`` (B,V,C) or (V,C) (shared by the batch; a batch of 1 is shared too). ``triangles`` (T,3) index
    ``attributes``; it may be another index list than the rasterized one (e.g. UV triangles) as long as triangle t
    is the same face in both. Differentiable w.r.t. the attributes and, through the barycentrics, the vertices.
    """
    if not torch.is_tensor(attributes) or attributes.ndim not in (2, 3):
        shape = tuple(attributes.shape) if torch.is_tensor(attributes) else type(attributes).__name__
        raise _bad(f"attributes must have shape (B, V, C) or (V, C), got {shape}.", "Add a channel dimension.")
    B, H, W = fragments.tri_id.shape
    if attributes.ndim == 3 and attributes.shape[0] not in (1, B):
        raise _bad(f"attributes have batch {attributes.shape[0]} but the fragments have {B}.",
                   "Give one attribute set per image or one shared set.")
    tris = as_triangles(triangles, attributes.shape[-2], attributes.device)
    flat = fragments.tri_id.reshape(-1)
    if flat.numel() and int(flat.max()) >= tris.shape[0]:
        raise _bad(f"the fragments reference triangle {int(flat.max())} but only {tris.shape[0]} were given.",
                   "Pass the triangle list that matches the rasterized mesh.")
    sel = (flat >= 0).nonzero().squeeze(1)
    corners = tris[flat[sel]]  # (N,3)
    if attributes.ndim == 2:
        values = attributes[corners]
    elif attributes.shape[0] == 1:
        values = attributes[0][corners]
    else:
        values = attributes[(sel // (H * W))[:, None], corners]
    weights = fragments.bary.reshape(-1, 3)[sel].to(attributes.dtype)
    mixed = (values * weights[..., None]).sum(1)
    C = attributes.shape[-1]
    out = torch.zeros(B * H * W, C, dtype=attributes.dtype, device=attributes.device).index_put((sel,), mixed)
    return out.view(B, H, W, C)


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Unit vertex normals, (B,V,3) or (V,3) like ``vertices``: the area-weighted sum of the adjacent face normals.

    Counter-clockwise triangles (seen from outside) give outward normals. A vertex used by no triangle gets (0,0,0).
    """
    if not torch.is_tensor(vertices) or vertices.ndim not in (2, 3) or vertices.shape[-1] != 3:
        raise _bad("vertices must have shape (B, V, 3) or (V, 3).", "Pass mesh vertex positions.")
    single = vertices.ndim == 2
    verts = vertices[None] if single else vertices
    tris = as_triangles(triangles, verts.shape[1], verts.device)
    a, b, c = (verts[:, tris[:, k]] for k in range(3))
    face = torch.linalg.cross(b - a, c - a, dim=-1)  # length = 2 × area, i.e. area weighting for free
    summed = torch.zeros_like(verts)
    for k in range(3):
        summed = summed.index_add(1, tris[:, k], face)
    length = summed.norm(dim=-1, keepdim=True)
    normals = summed / torch.where(length > 0, length, torch.ones_like(length))
    return normals[0] if single else normals


def sample_image(image: torch.Tensor, pixels: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Bilinear samples of ``image`` at continuous pixel positions (x, y) with pixel centres at +0.5.

    ``image`` (B,H,W,C) or (H,W,C) float; ``pixels`` (B,...,2) or (...,2) matching the image's batch.
    Returns (B,...,C) or (...,C). ``padding`` is ``"zeros"`` (outside is 0) or ``"border"`` (edge texels repeat).
    Differentiable w.r.t. the image and the positions.
    """
    if not torch.is_tensor(image) or image.ndim not in (3, 4) or not image.dtype.is_floating_point:
        raise _bad("image must be a float tensor of shape (B, H, W, C) or (H, W, C).",
                   "Convert uint8 images with .float() / 255.")
    if padding not in ("zeros", "border"):
        raise _bad(f"padding must be 'zeros' or 'border', got {padding!r}.", "Use 'zeros' or 'border'.")
    single = image.ndim == 3
    img = image[None] if single else image
    pts = pixels[None] if single else pixels
    if pts.shape[-1] != 2 or pts.shape[0] not in (1, img.shape[0]):
        raise _bad(f"pixels must have shape (B, ..., 2) matching the image batch, got {tuple(pixels.shape)}.",
                   "Give x, y pixel positions in the last dimension.")
    B, H, W, _ = img.shape
    lead = pts.shape[1:-1]
    pts = pts.expand(B, *pts.shape[1:]).reshape(B, 1, -1, 2).to(img.dtype)
    # With align_corners=False, normalised -1 and +1 are the outer edges of the image: exactly x / W * 2 - 1.
    scale = torch.tensor([2.0 / W, 2.0 / H], dtype=img.dtype, device=img.device)
    grid = pts * scale - 1.0
    out = F.grid_sample(img.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode=padding, align_corners=False)
    out = out[:, :, 0].permute(0, 2, 1).reshape(B, *lead, img.shape[-1])
    return out[0] if single else out
