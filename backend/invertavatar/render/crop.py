"""Square crops around a face: the camera of the crop and the resampled pixels (photometric fit, neural inputs)."""

from __future__ import annotations

import numpy as np
import torch

from .interpolate import sample_image


def square_crop(box: np.ndarray, scale: float = 1.6) -> tuple[float, float, float]:
    """(left, top, side) of a square ``scale`` times the box's longer side, centred on the box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = scale * max(x1 - x0, y1 - y0)
    return (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2, side


def crop_intrinsics(k: np.ndarray, rect: tuple[float, float, float], size: int) -> torch.Tensor:
    """Intrinsics of the crop ``rect`` of an image with intrinsics ``k``, resampled to ``size``² pixels."""
    left, top, side = rect
    scale = size / side
    k_crop = np.array(k, np.float64).copy()
    k_crop[0, 2] = (k[0, 2] - left) * scale
    k_crop[1, 2] = (k[1, 2] - top) * scale
    k_crop[:2, :2] *= scale
    return torch.from_numpy(k_crop).float()


def crop_image(image: np.ndarray, rect: tuple[float, float, float], size: int) -> torch.Tensor:
    """The crop resampled to ``size``² (bilinear, edges repeated), as (1, size, size, 3) floats in [0, 1]."""
    left, top, side = rect
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size * side
    grid_x, grid_y = torch.meshgrid(left + steps, top + steps, indexing="xy")
    frame = torch.from_numpy(np.array(image, dtype=np.float32))[None] / 255.0
    return sample_image(frame, torch.stack([grid_x, grid_y], -1)[None], padding="border")
