"""The eyes' iris colour, measured inside the iris landmarks of the keyframes (for the procedural eye texture)."""

from __future__ import annotations

import json

import numpy as np

from ..detect import Detection
from ..detect.landmark_schemes import LEFT_IRIS, RIGHT_IRIS


class IrisColour:
    """Running mean of the pixels inside both irises (the pupil's centre excluded)."""

    def __init__(self, total: np.ndarray | None = None, count: int = 0) -> None:
        self.total = np.zeros(3) if total is None else np.asarray(total, np.float64)
        self.count = count

    def add(self, image: np.ndarray, detection: Detection) -> None:
        if detection.scheme != "mediapipe478" or len(detection.landmarks) < 478:
            return
        height, width = image.shape[:2]
        for iris in (LEFT_IRIS, RIGHT_IRIS):
            centre, ring = detection.landmarks[iris[0]], detection.landmarks[iris[1:]]
            radius = float(np.linalg.norm(ring - centre, axis=1).mean())
            if radius < 2.0:
                continue  # too small to tell a colour
            y, x = np.ogrid[0:height, 0:width]
            distance = np.hypot(x + 0.5 - centre[0], y + 0.5 - centre[1])
            ring_mask = (distance < 0.85 * radius) & (distance > 0.4 * radius)
            pixels = image[ring_mask]
            if len(pixels):
                self.total += pixels.mean(0) / 255.0
                self.count += 1

    def colour(self) -> np.ndarray | None:
        return (self.total / self.count).astype(np.float32) if self.count else None

    def to_bytes(self) -> bytes:
        return json.dumps({"total": self.total.tolist(), "count": self.count}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "IrisColour":
        raw = json.loads(data)
        return cls(np.array(raw["total"]), int(raw["count"]))
