"""Build the fine stage's inputs for one observed frame from what the tracking pipeline knows about it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.inversion.model import FrameBatch
from invertavatar.neural.inversion.unwrap import unwrap_grid
from invertavatar.neural.prior.condition import IctCondition
from invertavatar.render import Camera


def frame_from_fit(condition: IctCondition, image: np.ndarray, vertices: torch.Tensor, camera: Camera) -> FrameBatch:
    """One frame (B = T = 1): ``image`` (H, W, 3) uint8 square face crop, ``vertices`` (V, 3) the fitted ICT head
    in its canonical frame (identity + expression, no head pose) and ``camera`` the fitted camera of that crop
    (head pose folded into R, t; metres). The image is resized to the prior's output resolution.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise InvertAvatarError("bad_input", f"Expected a square RGB crop, got shape {image.shape}.",
                                "Crop the face to a square around the head first.")
    size = condition.config.output_resolution
    picture = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    if picture.shape[-1] != size:
        picture = F.interpolate(picture, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        label = condition.camera_label(camera)
        cond = condition(vertices[None])[0]
        grid, visible = unwrap_grid(condition, vertices, camera)
    return FrameBatch(picture[:, None].float(), label[None, None].float(), cond[None, None].float(),
                      grid[None, None].float(), visible[None, None])
