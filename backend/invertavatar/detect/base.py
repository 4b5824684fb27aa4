"""The detection interface: one `Detection` per frame, produced by any `Detector` that `make_detector` builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from invertavatar.errors import InvertAvatarError

MULTIPLE_FACES_POLICIES = ("largest", "fail")
DETECTOR_NAMES = ("mediapipe", "fan")
# Other spellings a user may type for the same backends.
_ALIASES = {"face-alignment": "fan", "face_alignment": "fan", "mp": "mediapipe"}


@dataclass
class Detection:
    """One face found in one image.

    Pixel coordinates follow OpenCV: x to the right, y down, the centre of pixel (col, row) at (col, row).

    - ``box``: (4,) float32 ``x0, y0, x1, y1`` — the extent of the landmarks, clipped to the image.
    - ``landmarks``: (N, 2) float32 pixels; ``scheme`` says which points (``"mediapipe478"`` or ``"ibug68"``).
    - ``landmarks_z``: (N,) float32 relative depth in pixels (smaller = nearer the camera) or ``None``.
    - ``blendshapes``: (52,) float32 in [0, 1] in ``invertavatar.headmodel.arkit.ARKIT_NAMES`` order, or ``None``.
      ``blendshapes_valid`` (52,) bool marks the names the detector really estimates (others are 0).
    - ``head_pose``: (4, 4) float32 mapping the detector's canonical face (backend axes, metres) to OpenCV camera
      space in metres, or ``None``. Its translation assumes the detector's own camera (see the detector's docs).
    - ``faces_found``: how many faces the detector saw; ``warnings``: messages for the user.
    - ``score``: the face detector's confidence in [0, 1] (about 0.9 for clear photos of people), or ``None``.
    - ``shape_residual``: RMS distance between the landmarks and the best similarity fit of the canonical face,
      as a fraction of the inter-ocular distance, or ``None``. With ``score`` it is a cheap plausibility signal:
      being detected is not proof of a human face (paintings and some animals pass).
    """

    box: np.ndarray
    landmarks: np.ndarray
    landmarks_z: np.ndarray | None
    scheme: str
    blendshapes: np.ndarray | None
    head_pose: np.ndarray | None
    faces_found: int
    warnings: list[str] = field(default_factory=list)
    score: float | None = None
    shape_residual: float | None = None
    blendshapes_valid: np.ndarray | None = None
    source: str = ""
    image_size: tuple[int, int] = (0, 0)  # (height, width)


@runtime_checkable
class Detector(Protocol):
    """Finds the face in an RGB image. Use as a context manager or call `close()` to free native resources."""

    name: str
    scheme: str

    def detect(self, image: np.ndarray, source: str = "image") -> Detection:
        """Detect the face in ``image`` (H×W×3 RGB uint8, or float32 in [0, 1]).

        ``source`` names the file or frame in messages. Raises ``InvertAvatarError("no_face")`` when there is no
        face and ``InvertAvatarError("several_faces")`` when there are several and the policy is ``"fail"``.
        """
        ...

    def close(self) -> None:
        """Release the detector's resources; calling it twice is harmless."""
        ...

    def __enter__(self) -> Detector: ...

    def __exit__(self, *exc: object) -> None: ...


def as_rgb_uint8(image: object, source: str) -> np.ndarray:
    """Check that ``image`` is an H×W×3 RGB array and return it as C-contiguous uint8.

    Accepts uint8, and float32 in [0, 1] (the project's two image types); anything else is refused with a message
    that says how to convert it.
    """
    if not isinstance(image, np.ndarray):
        raise InvertAvatarError(
            "bad_image", f"{source}: expected a numpy array, got {type(image).__name__}.",
            "Pass the decoded image as an H×W×3 RGB numpy array (invertavatar.io.frames decodes files).",
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvertAvatarError(
            "bad_image", f"{source}: expected an H×W×3 RGB image, got an array of shape {image.shape}.",
            "Convert grey or RGBA images to RGB first (e.g. PIL's Image.convert('RGB')).",
        )
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise InvertAvatarError("bad_image", f"{source}: the image is only {image.shape[1]}×{image.shape[0]} pixels.",
                                "Use a photo in which the face is at least about 64 pixels wide.")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.float32:
        low, high = float(np.nanmin(image)), float(np.nanmax(image))
        if not (np.isfinite(low) and np.isfinite(high) and low >= 0.0 and high <= 1.0):
            raise InvertAvatarError(
                "bad_image", f"{source}: float32 image values must lie in [0, 1], found {low:g}..{high:g}.",
                "Scale the image to [0, 1] or pass it as uint8 0..255.",
            )
        return np.ascontiguousarray(np.round(image * 255.0).astype(np.uint8))
    raise InvertAvatarError(
        "bad_image", f"{source}: unsupported image dtype {image.dtype}; expected uint8 (0..255) or float32 (0..1).",
        "Convert it, e.g. `image.astype(np.uint8)` for 8-bit data or `(image / 65535).astype(np.float32)` for "
        "16-bit data.",
    )


def box_from_points(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """(4,) float32 ``x0, y0, x1, y1``: the bounds of ``points`` (N, 2) clipped to the image."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return np.array([max(x0, 0.0), max(y0, 0.0), min(x1, width - 1.0), min(y1, height - 1.0)], np.float32)


def box_area(box: np.ndarray) -> float:
    """Area of an ``x0, y0, x1, y1`` box in square pixels (0 for an empty box)."""
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def pick_face(boxes: list[np.ndarray], policy: str, source: str) -> tuple[int, list[str]]:
    """Apply the several-faces policy: return the index of the face to use and the warnings to show.

    ``"largest"`` keeps the face with the largest box and warns; ``"fail"`` raises ``several_faces``.
    """
    if len(boxes) == 1:
        return 0, []
    areas = [box_area(b) for b in boxes]
    best = int(np.argmax(areas))
    if policy == "fail":
        raise InvertAvatarError(
            "several_faces", f"{source}: {len(boxes)} faces were found; this job accepts exactly one.",
            "Crop the image to one person, or allow several faces (multiple_faces='largest' uses the largest).",
        )
    box = boxes[best]
    size = f"{box[2] - box[0]:.0f}×{box[3] - box[1]:.0f} px"
    return best, [f"{source}: {len(boxes)} faces found; using the largest ({size} at x={box[0]:.0f}, y={box[1]:.0f})."]


def no_face_error(source: str) -> InvertAvatarError:
    """The error every detector raises when it finds no face."""
    return InvertAvatarError(
        "no_face", f"No face was found in {source}.",
        "Use a well-lit photo or frame in which one human face is clearly visible, roughly frontal, and at least "
        "about 100 pixels wide; animals, drawings and heavily turned or covered faces are not supported.",
    )


def make_detector(name: str = "mediapipe", multiple_faces: str = "largest", device: object = None,
                  model_path: str | Path | None = None) -> Detector:
    """Build a detector by name.

    ``name``: ``"mediapipe"`` (default, 478 points, ARKit blendshapes, head pose; ``model_path`` is the
    ``face_landmarker.task``) or ``"fan"`` (face-alignment, 68 iBUG points, needs its weights in the torch hub cache;
    the face box comes from MediaPipe, so ``model_path`` is again the ``.task``). ``multiple_faces``: ``"largest"``
    keeps the largest face with a warning, ``"fail"`` raises ``several_faces``. ``device`` (torch device or string)
    only matters for ``"fan"``.
    """
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if multiple_faces not in MULTIPLE_FACES_POLICIES:
        raise InvertAvatarError(
            "bad_option", f"Unknown multiple-faces policy {multiple_faces!r}.",
            f"Use one of: {', '.join(MULTIPLE_FACES_POLICIES)}.",
        )
    if key == "mediapipe":
        from invertavatar.detect.mediapipe_detector import MediaPipeDetector

        return MediaPipeDetector(multiple_faces=multiple_faces, model_path=model_path)
    if key == "fan":
        from invertavatar.detect.fan_detector import FanDetector

        return FanDetector(multiple_faces=multiple_faces, device=device, model_path=model_path)
    raise InvertAvatarError("unknown_detector", f"Unknown face detector {name!r}.",
                            f"Use one of: {', '.join(DETECTOR_NAMES)}.")
