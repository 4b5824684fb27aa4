"""The ``neural`` renderer: the bundle's inversion state restored into the installed prior, drawn for any camera.

Expression and gaze become the mesh condition (the bundle's personalised head with its ARKit deltas, in the
canonical frame); the head pose is folded into the camera, as the prior expects. The prior renders square
pictures, so a camera of another aspect is covered by a square one that shares its intrinsics and pose, and the
result is cropped: pixels line up with the requested camera whatever its shape.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import InvertAvatarError
from ..render import Camera
from ..render.avatar import posed_vertices
from ..render.transforms import quaternion_to_matrix

CACHE_SIZE = 2
_cache: OrderedDict[tuple, Any] = OrderedDict()
_lock = threading.Lock()


def neural_stage_for(bundle: Any):
    """A ``NeuralStage`` restored from the bundle's state (cached per state and head model)."""
    from ..headmodel import load_head_model
    from ..pipeline.neural_stage import STATE_FILE, NeuralStage

    state = bundle.state[STATE_FILE]
    head = bundle.manifest.get("head_model", {})
    key = (hashlib.sha256(state).hexdigest(), head.get("id"), head.get("checksum"))
    with _lock:
        stage = _cache.get(key)
        if stage is not None:
            _cache.move_to_end(key)
            return stage
    model = load_head_model("faceverse" if str(head.get("id", "")).lower().startswith("faceverse") else "ict")
    if head.get("checksum") not in (None, model.checksum):
        raise InvertAvatarError("head_model_mismatch", f"The avatar was made with another {model.name} model than "
                                "the one installed, so its neural state cannot be conditioned on it.",
                                "Install the head model the avatar was made with, or reconstruct the avatar.")
    stage = NeuralStage(model, state)
    with _lock:
        _cache[key] = stage
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return stage


def neural_camera_cover(camera: Camera) -> tuple[Camera, tuple[int, int]]:
    """A square camera (side = the longer image side) with the same focal lengths and pose whose central part is
    ``camera``'s picture, and the (column, row) offset of that part."""
    side = max(camera.width, camera.height)
    dx, dy = (side - camera.width) // 2, (side - camera.height) // 2
    k = camera.K.clone()
    k[..., 0, 2] += dx
    k[..., 1, 2] += dy
    return Camera(k, camera.R, camera.t, side, side), (dx, dy)


def fold_head_pose(camera: Camera, rotation: np.ndarray, translation: np.ndarray, pivot: np.ndarray) -> Camera:
    """The camera that sees the canonical head as ``camera`` sees it posed (rotation about ``pivot``, then shift).

    Posed x' = R_h (x − p) + p + t, seen as R_c x' + t_c = (R_c R_h) x + R_c (p − R_h p + t) + t_c.
    """
    r_h = quaternion_to_matrix(torch.as_tensor(np.asarray(rotation, np.float32)))
    p = torch.as_tensor(np.asarray(pivot, np.float32))
    t = torch.as_tensor(np.asarray(translation, np.float32))
    cam = camera.to(dtype=torch.float32)
    return Camera(cam.K, cam.R @ r_h, cam.R @ (p - r_h @ p + t) + cam.t, cam.width, cam.height)


def head_pivot(mesh: Mapping[str, np.ndarray]) -> np.ndarray:
    """Where the head rotates: the head bone's head (as ``render.avatar.posed_vertices``), else the origin."""
    names = [str(n) for n in mesh.get("bone_names", ())]
    if "head" in names and "bone_heads" in mesh:
        return np.asarray(mesh["bone_heads"], np.float32)[names.index("head")]
    return np.zeros(3, np.float32)


def render_neural(bundle: Any, arkit: np.ndarray, rotation: Any, translation: Any, gaze: Mapping[str, Any] | None,
                  camera: Camera, neural_resolution: int | None = None, seed: int = 0,
                  super_resolution: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 neural render of ``bundle`` for ``camera`` (see :func:`invertavatar.renderers.render`)."""
    import cv2

    if camera.batch_size not in (None, 1):
        raise InvertAvatarError("invalid_render_input", "The neural renderer draws one view at a time.",
                                "Pass one Camera.")
    rotation = np.asarray(rotation, np.float64).reshape(-1)
    translation = np.asarray(translation, np.float64).reshape(-1)
    if rotation.shape != (4,) or np.linalg.norm(rotation) < 1e-9 or translation.shape != (3,):
        raise InvertAvatarError("invalid_render_input", "rotation must be a quaternion [w, x, y, z] and translation "
                                "3 numbers.", "Use [1, 0, 0, 0] and [0, 0, 0] for the rest pose.")
    stage = neural_stage_for(bundle)
    mesh = bundle.mesh
    canonical = posed_vertices(mesh, np.asarray(arkit, np.float32), np.array([1.0, 0, 0, 0]), np.zeros(3),
                               dict(gaze) if gaze else None)
    square, (dx, dy) = neural_camera_cover(camera[0] if camera.batch_size else camera)
    folded = fold_head_pose(square, rotation / np.linalg.norm(rotation), translation, head_pivot(mesh))
    image = stage.render(canonical.numpy(), folded, neural_resolution, seed, super_resolution)
    side = square.width
    if image.shape[0] != side:
        interpolation = cv2.INTER_AREA if image.shape[0] > side else cv2.INTER_LINEAR
        image = cv2.resize(image, (side, side), interpolation=interpolation)
    return np.ascontiguousarray(image[dy:dy + camera.height, dx:dx + camera.width])
