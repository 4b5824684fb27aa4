"""Per-frame performance for ``tracks.json``: ARKit weights, head rotation/translation about the head joint, gaze."""

from __future__ import annotations

import numpy as np

from ..headmodel import ARKIT_NAMES
from ..render import matrix_to_quaternion
from ..track import FrameFit

FLIP = np.diag([1.0, -1.0, -1.0])


def head_pose(fit: FrameFit) -> tuple[np.ndarray, np.ndarray]:
    """Head rotation (backend axes, relative to facing the camera) and the model origin's position."""
    return FLIP @ fit.rotation, FLIP @ fit.translation


class TrackRecorder:
    """Collects frame records; translations are the head joint's displacement from the first recorded frame."""

    def __init__(self, head_joint: np.ndarray, fps: float | None, source: str) -> None:
        self.head_joint = np.asarray(head_joint, np.float64)
        self.fps = fps
        self.source = source
        self.frames: list[dict] = []
        self._reference: np.ndarray | None = None

    def add(self, fit: FrameFit) -> None:
        import torch

        rotation, origin = head_pose(fit)
        joint = rotation @ self.head_joint + origin
        if self._reference is None:
            self._reference = joint
        quaternion = matrix_to_quaternion(torch.from_numpy(rotation).float()).numpy()
        if quaternion[0] < 0:
            quaternion = -quaternion
        self.frames.append({
            "index": fit.index, "time": round(fit.time, 6),
            "arkit": [round(float(w), 5) for w in fit.arkit],
            "head_rotation": [round(float(q), 6) for q in quaternion],
            "head_translation": [round(float(x), 6) for x in joint - self._reference],
            "gaze": {k: [round(float(a), 5) for a in v] for k, v in fit.gaze.items()},
        })

    def to_json(self) -> dict:
        return {"fps": self.fps, "source": self.source, "arkit_names": list(ARKIT_NAMES), "frames": self.frames}
