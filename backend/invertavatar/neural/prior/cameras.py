"""The prior's 25-value camera label: flattened 4x4 cam-to-world (OpenCV camera) + flattened normalised 3x3 K.

The prior's world frame is EG3D's, which is also the backend's orientation: +x the subject's left (image right of
the frontal view), +y up, +z out of the face towards the frontal camera, which sits at pivot + (0, 0, radius) with
cam-to-world rotation diag(1, -1, -1). Plane 0 samples (x, y) with y along its rows, so in plane (and mesh
condition) pixels the face is upside down: chin in the top rows, forehead at the bottom.
Backend metres reach this frame by a similarity transform (``condition.IctCondition``: shift and scale;
``condition_faceverse.FaceverseCondition``: the reference's FaceVerse -> FLAME-like -> normalised chain).
"""

from __future__ import annotations

import math

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
    """Cam-to-world (4, 4) of a camera on a sphere around ``pivot``, looking at it.

    ``yaw`` (radians) moves the camera towards +x (the subject's left), ``pitch`` moves it up (+y).
    """
    centre = np.asarray(pivot, dtype=np.float64)
    offset = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    forward = -offset  # camera z axis
    down = np.array([0.0, -1.0, 0.0]) - (-forward[1]) * forward  # image down: world down, made orthogonal to z
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)  # OpenCV: x = y cross z
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, centre + radius * offset
    return torch.from_numpy(pose).float()


def camera_label(cam2world: torch.Tensor, focal: float = DEFAULT_FOCAL, principal: float = 0.5) -> torch.Tensor:
    """25-value label from a (4, 4) cam-to-world matrix and a normalised focal length / principal point."""
    intrinsics = torch.tensor([[focal, 0.0, principal], [0.0, focal, principal], [0.0, 0.0, 1.0]],
                              dtype=cam2world.dtype, device=cam2world.device)
    return torch.cat([cam2world.reshape(16), intrinsics.reshape(9)])


def label_from_camera(camera, rotation: np.ndarray, scale: float, offset: np.ndarray) -> torch.Tensor:
    """Label for an ``invertavatar.render.Camera`` (backend metres, world->camera R, t; K in pixels).

    Backend points map into the prior frame by the similarity p' = scale * rotation @ p + offset.
    """
    q = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    r = np.asarray(camera.R, dtype=np.float64).reshape(3, 3)
    t = np.asarray(camera.t, dtype=np.float64).reshape(3)
    position = -r.T @ t
    pose = np.eye(4)
    pose[:3, :3] = q @ r.T
    pose[:3, 3] = scale * q @ position + np.asarray(offset, np.float64)
    k = np.asarray(camera.K, dtype=np.float64).reshape(3, 3).copy()
    k[0] /= float(camera.width)
    k[1] /= float(camera.height)
    return torch.from_numpy(np.concatenate([pose.reshape(16), k.reshape(9)])).float()
