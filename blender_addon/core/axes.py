"""The one axis conversion: backend space (+Y up, face towards +Z, metres) to Blender (Z up, face towards -Y).

It is a +90 degree rotation about X, applied to the data (never left as an object transform), so exported
files start from an identity object transform.
"""

from __future__ import annotations

import math

import numpy as np

# Rows map backend (x, y, z) to Blender (x, -z, y).
BACKEND_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def points_to_blender(points: np.ndarray) -> np.ndarray:
    """Convert (..., 3) positions or offsets from backend axes to Blender axes (new array, float32 or wider)."""
    p = np.asarray(points, dtype=np.result_type(np.asarray(points).dtype, np.float32))
    out = np.empty_like(p)
    out[..., 0] = p[..., 0]
    out[..., 1] = -p[..., 2]
    out[..., 2] = p[..., 1]
    return out


def points_to_backend(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`points_to_blender`."""
    p = np.asarray(points, dtype=np.result_type(np.asarray(points).dtype, np.float32))
    out = np.empty_like(p)
    out[..., 0] = p[..., 0]
    out[..., 1] = p[..., 2]
    out[..., 2] = -p[..., 1]
    return out


def quats_to_blender(quats: np.ndarray) -> np.ndarray:
    """Convert (..., 4) rotations [w, x, y, z] from backend axes to Blender axes (rotate the vector part)."""
    q = np.asarray(quats, dtype=np.float64)
    out = q.copy()
    out[..., 1:] = points_to_blender(q[..., 1:])
    return out


def quats_to_backend(quats: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quats_to_blender`."""
    q = np.asarray(quats, dtype=np.float64)
    out = q.copy()
    out[..., 1:] = points_to_backend(q[..., 1:])
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions [w, x, y, z] to (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.empty(q.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - w * z)
    m[..., 0, 2] = 2 * (x * z + w * y)
    m[..., 1, 0] = 2 * (x * y + w * z)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - w * x)
    m[..., 2, 0] = 2 * (x * z - w * y)
    m[..., 2, 1] = 2 * (y * z + w * x)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of (..., 4) quaternions [w, x, y, z] (apply b first, then a)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quats_in_frame(quats: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Express (..., 4) rotations given in a parent space inside a frame whose axes are the columns of ``frame``.

    A pose bone's rotation is relative to its rest orientation: ``local = frame^T * R * frame``. Rotating the
    quaternion's vector part by ``frame^T`` computes exactly that without a matrix round trip.
    """
    q = np.asarray(quats, dtype=np.float64)
    out = q.copy()
    out[..., 1:] = q[..., 1:] @ np.asarray(frame, dtype=np.float64)
    return out


def gaze_to_quats(pitch_yaw: np.ndarray) -> np.ndarray:
    """(..., 2) eye [pitch, yaw] in radians to (..., 4) eye rotations in backend axes.

    Rest gaze is +Z; positive pitch looks up (+Y), positive yaw towards the subject's left (+X).
    The rotation is yaw about +Y after pitch about -X.
    """
    py = np.asarray(pitch_yaw, dtype=np.float64)
    half_p = -0.5 * py[..., 0]
    half_y = 0.5 * py[..., 1]
    pitch_q = np.stack([np.cos(half_p), np.sin(half_p), np.zeros_like(half_p), np.zeros_like(half_p)], axis=-1)
    yaw_q = np.stack([np.cos(half_y), np.zeros_like(half_y), np.sin(half_y), np.zeros_like(half_y)], axis=-1)
    return quat_multiply(yaw_q, pitch_q)


def fps_to_blender(fps: float) -> tuple[int, float]:
    """Blender stores frame rate as ``fps / fps_base``; pick the integer ``fps`` nearest the clip's rate."""
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    whole = max(1, int(round(fps)))
    return whole, whole / fps
