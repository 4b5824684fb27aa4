"""Blender cameras (scene camera or viewport) as the backend's pinhole camera in the avatar's frame.

The backend wants OpenCV conventions in its own axes (docs/server.md, ``RenderCamera``): ``x_cam = R @ x + t`` with
x right, y down, z forward, and ``K`` in pixels with pixel centres at +0.5. Blender cameras look down their −Z
with +Y up, and Blender's world is Z-up; the avatar's mesh holds backend data turned by ``axes.BACKEND_TO_BLENDER``.
Intrinsics come from Blender's own projection matrix (``Object.calc_matrix_camera`` or the viewport's
``window_matrix``), so sensor fit, lens shift and zoom are Blender's, not re-derived here.
"""

from __future__ import annotations

import numpy as np

from .axes import BACKEND_TO_BLENDER
from .errors import AddonError

# Blender camera axes (x right, y up, z backwards) → OpenCV camera axes (x right, y down, z forward).
_FLIP = np.diag([1.0, -1.0, -1.0])


def intrinsics_from_projection(projection: np.ndarray, width: int, height: int) -> np.ndarray:
    """``K`` (3, 3) in pixels of a perspective OpenGL-style projection matrix for a ``width`` × ``height`` image."""
    p = np.asarray(projection, dtype=np.float64).reshape(4, 4)
    if abs(p[3, 3]) > 1e-9 or abs(p[3, 2] + 1.0) > 1e-6:
        raise AddonError("bad_input", "The preview needs a perspective view.",
                         "Switch the viewport (or the camera) from orthographic to perspective.")
    return np.array([[p[0, 0] * width / 2.0, -p[0, 1] * width / 2.0, (1.0 - p[0, 2]) * width / 2.0],
                     [0.0, p[1, 1] * height / 2.0, (1.0 + p[1, 2]) * height / 2.0],
                     [0.0, 0.0, 1.0]])


def camera_in_avatar_frame(camera_to_world: np.ndarray, avatar_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) world → camera in backend axes of the avatar's mesh, OpenCV camera convention.

    ``camera_to_world`` is the Blender camera's (or the viewport's inverse view) matrix, ``avatar_to_world`` the
    head mesh object's ``matrix_world``. A scaled avatar object is handled: its scale moves the camera instead.
    """
    local = np.linalg.inv(np.asarray(avatar_to_world, np.float64)) @ np.asarray(camera_to_world, np.float64)
    axes = local[:3, :3]
    scale = np.linalg.norm(axes, axis=0)
    if np.any(scale < 1e-12):
        raise AddonError("bad_input", "The camera or the avatar has a zero scale.", "Reset their scale to 1.")
    to_backend = BACKEND_TO_BLENDER.T  # orthonormal: the inverse is the transpose
    rotation = to_backend @ (axes / scale) @ _FLIP  # camera (OpenCV) axes in backend coordinates
    position = to_backend @ local[:3, 3]
    u, _, vt = np.linalg.svd(rotation)  # re-orthonormalise (a sheared matrix would not be a camera)
    rotation = u @ vt
    return rotation.T, -rotation.T @ position


def render_camera(projection: np.ndarray, camera_to_world: np.ndarray, avatar_to_world: np.ndarray,
                  width: int, height: int) -> dict:
    """The ``camera`` object of a render request (JSON-ready lists)."""
    k = intrinsics_from_projection(projection, width, height)
    r, t = camera_in_avatar_frame(camera_to_world, avatar_to_world)
    return {"K": k.tolist(), "R": r.tolist(), "t": t.tolist()}
