"""The mesh-driven frontal plane: hole fill, multi-scale texture rasterisation, window paste.

The mesh condition is a frontal orthographic render of the head mesh, (B, H, W, 3) with channels
(u, v) in [-1, 1] (a ``grid_sample`` grid: u -> width, v -> height) and a face alpha. It covers exactly the
face window of the XY plane (reference §1.4), so the condition resolution equals the plane resolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from invertavatar.errors import InvertAvatarError


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of (B, C, H, W) to size x size (identity when already that size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def check_condition(condition: torch.Tensor, resolution: int) -> torch.Tensor:
    """Validate a mesh condition image and return it as float (B, H, W, 3) with a binary alpha."""
    if condition.ndim != 4 or condition.shape[-1] < 3 or condition.shape[1:3] != (resolution, resolution):
        raise InvertAvatarError(
            "bad_input",
            f"The mesh condition must be (B, {resolution}, {resolution}, 3), got {tuple(condition.shape)}.",
            "Build it with invertavatar.neural.prior.condition.mesh_condition() for this prior configuration.",
        )
    condition = condition[..., :3].float()
    alpha = (condition[..., 2:3] > 0.5).float()
    return torch.cat([condition[..., :2], alpha], dim=-1)


def hole_masks(alpha: torch.Tensor, mouth_row: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill enclosed holes of a binary face alpha (B, H, W).

    Background is what a 4-connected flood fill from the top-left corner reaches; every other empty pixel is a
    hole (mouth cavity, nostrils, ...); with a covered corner nothing is background. Returns ``full_alpha`` = alpha or holes, and ``inject_alpha`` = alpha or
    the holes at rows >= ``mouth_row`` (only the mouth is re-synthesised from static features).
    """
    holes = np.zeros(alpha.shape, dtype=bool)
    empty = alpha.detach().cpu().numpy() < 0.5
    for i in range(empty.shape[0]):
        if not empty[i, 0, 0]:
            # The reference floods from the corner whatever it holds: a covered corner floods the face, so every
            # empty pixel counts as a hole.
            holes[i] = empty[i]
            continue
        labels, _ = ndimage.label(empty[i])
        holes[i] = empty[i] & (labels != labels[0, 0])
    holes_t = torch.from_numpy(holes).to(alpha.device)
    mouth = holes_t.clone()
    mouth[:, :mouth_row] = False
    face = alpha > 0.5
    return (face | holes_t).to(alpha.dtype), (face | mouth).to(alpha.dtype)


def crop_window(feature: torch.Tensor, window: tuple[int, int, int, int], plane_res: int) -> torch.Tensor:
    """Crop the face window (given in plane pixels) out of a feature map of any resolution, resized back to it."""
    res = feature.shape[-1]
    r0, r1, c0, c1 = (int(round(v * res / plane_res)) for v in window)
    crop = feature[:, :, r0:r1, c0:c1]
    return F.interpolate(crop, size=(res, res), mode="bilinear", align_corners=False, antialias=True)


def injection_maps(
    texture_levels: list[torch.Tensor],
    static_levels: list[torch.Tensor],
    condition: torch.Tensor,
    inject_alpha: torch.Tensor,
    window: tuple[int, int, int, int],
    plane_res: int,
) -> list[torch.Tensor]:
    """Rasterise every texture level through the UV map and blend it with the static crop of the same level.

    Each map gets ``inject_alpha`` as an extra last channel. Inside the mouth the rasterised alpha is 0 but the
    injection alpha is 1, so the face network receives static-plane features there and re-synthesises the mouth.
    """
    grid = condition[..., :2]
    alpha = condition[..., 2:3].permute(0, 3, 1, 2)
    inject = inject_alpha.unsqueeze(1)
    maps = []
    for texture, static in zip(texture_levels, static_levels):
        res = texture.shape[-1]
        raster = F.grid_sample(texture, grid.to(texture.dtype), mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        raster, a = resize(raster, res), resize(alpha, res)
        blended = raster * a + crop_window(static, window, plane_res) * (1 - a)
        maps.append(torch.cat([blended, resize(inject, res)], dim=1))
    return maps


def paste_face(
    face: torch.Tensor, full_alpha: torch.Tensor, static_plane: torch.Tensor, window: tuple[int, int, int, int]
) -> torch.Tensor:
    """Downsample the face network output into the window and alpha-blend it over the static XY plane."""
    r0, r1, c0, c1 = window
    if r1 - r0 != c1 - c0:
        raise ValueError("the face window must be square")
    size = r1 - r0
    canvas = torch.zeros_like(static_plane)
    canvas_alpha = torch.zeros_like(static_plane[:, :1])
    canvas[:, :, r0:r1, c0:c1] = resize(face, size)
    canvas_alpha[:, :, r0:r1, c0:c1] = resize(full_alpha.unsqueeze(1), size)
    return canvas * canvas_alpha + static_plane * (1 - canvas_alpha)
