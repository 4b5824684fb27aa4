"""The prior's 25-value camera label: flattened 4x4 cam-to-world (OpenCV camera) + flattened normalised 3x3 K.

World frame of the prior = the backend frame (metres scaled to the tri-plane box, +Y up, face looking down +Z);
the frontal camera sits at pivot + (0, 0, radius) with cam-to-world rotation diag(1, -1, -1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

DEFAULT_FOCAL = 4.2647  # normalised focal of the released model (EG3D's 18.837 degree field of view)
DEFAULT_RADIUS = 2.7
DEFAULT_PIVOT = (0.0, 0.0, 0.2)


def orbit_camera(
    yaw: float = 0.0,
    pitch: float = 0.0,
    radius: float = DEFAULT_RADIUS,
    pivot: tuple[float, float, float] = DEFAULT_PIVOT,
) -> torch.Tensor:
    """Cam-to-world (4, 4) of a camera on a sphere around ``pivot`` looking at it.

    ``yaw`` (radians) moves the camera towards +X (the subject's left), ``pitch`` moves it up.
    """
    centre = torch.tensor(pivot, dtype=torch.float64)
    offset = torch.tensor([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)],
                          dtype=torch.float64)
    position = centre + radius * offset
    forward = -offset
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose.float()


def camera_label(cam2world: torch.Tensor, focal: float = DEFAULT_FOCAL, principal: float = 0.5) -> torch.Tensor:
    """25-value label from a (4, 4) cam-to-world matrix and a normalised focal length / principal point."""
    intrinsics = torch.tensor([[focal, 0.0, principal], [0.0, focal, principal], [0.0, 0.0, 1.0]],
                              dtype=cam2world.dtype, device=cam2world.device)
    return torch.cat([cam2world.reshape(16), intrinsics.reshape(9)])


def label_from_camera(camera: Any, world_scale: float = 1.0) -> torch.Tensor:
    """Label from an ``invertavatar.render.Camera`` (K in pixels, world->camera R, t, width, height).

    ``world_scale`` converts the camera's world units into the prior's (e.g. metres -> tri-plane box units).
    """
    r = np.asarray(camera.R, dtype=np.float64)
    t = np.asarray(camera.t, dtype=np.float64) * world_scale
    pose = np.eye(4)
    pose[:3, :3] = r.T
    pose[:3, 3] = -r.T @ t
    k = np.asarray(camera.K, dtype=np.float64).copy()
    k[0] /= float(camera.width)
    k[1] /= float(camera.height)
    return torch.from_numpy(np.concatenate([pose.reshape(16), k.reshape(9)])).float()
