"""Online keyframe choice for clips: sharp frames that show the head from a new angle, up to a budget.

Frames arrive one at a time and are never stored, so the choice is made on the spot: a frame becomes a keyframe when
it is at least nearly as sharp as the clip so far and its head pose differs enough from every keyframe already taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_POSE_CHANGE = np.radians(7.0)
SHARPNESS_SHARE = 0.75  # of the running median


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians) of the rotation taking ``a`` to ``b``."""
    cosine = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.arccos(np.clip(cosine, -1.0, 1.0)))


@dataclass
class KeyframeSelector:
    max_keyframes: int = 16
    every: int = 1
    taken_rotations: list[np.ndarray] = field(default_factory=list)
    sharpness_seen: list[float] = field(default_factory=list)

    def consider(self, index: int, sharpness: float, rotation: np.ndarray | None) -> bool:
        """Whether frame ``index`` (with its sharpness and, if known, head rotation) becomes a keyframe."""
        self.sharpness_seen.append(sharpness)
        if len(self.taken_rotations) >= self.max_keyframes or index % self.every:
            return False
        if not self.taken_rotations:
            return True
        if sharpness < SHARPNESS_SHARE * float(np.median(self.sharpness_seen)):
            return False
        if rotation is None:
            return False
        return min(rotation_angle(rotation, r) for r in self.taken_rotations) >= MIN_POSE_CHANGE

    def accept(self, rotation: np.ndarray) -> None:
        self.taken_rotations.append(rotation)
