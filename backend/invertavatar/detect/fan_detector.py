"""face-alignment (FAN, 68 iBUG points) as an optional detector; it never downloads anything.

face-alignment 1.5.0 fetches its network weights from the internet when they are not in the torch hub cache, and
always builds a face detector that downloads its own weights too. This wrapper checks for the FAN file first and
says where to put it, and hands FAN the face box found by MediaPipe (``detected_faces=``) with face-alignment's
download-free ``folder`` detector, so nothing is fetched. MediaPipe's blendshapes and head pose are passed through.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from invertavatar.detect.base import Detection, as_rgb_uint8, box_from_points
from invertavatar.detect.landmark_schemes import MEDIAPIPE_TO_IBUG68
from invertavatar.detect.mediapipe_detector import MediaPipeDetector
from invertavatar.errors import InvertAvatarError

FAN_WEIGHTS_FILE = "2DFAN4-11f355bf06.pth.tar"
FAN_WEIGHTS_URL = "https://www.adrianbulat.com/downloads/python-fan/" + FAN_WEIGHTS_FILE
FACE_ALIGNMENT_REQUIREMENT = "face-alignment==1.5.0"


def fan_weights_dir() -> Path:
    """The folder face-alignment reads its weights from: ``torch.hub.get_dir()/checkpoints`` (follows TORCH_HOME)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def fan_weights_path() -> Path:
    """Where the 2D FAN weights must be for the ``fan`` detector to work."""
    return fan_weights_dir() / FAN_WEIGHTS_FILE


def check_fan_available() -> Path:
    """Return the FAN weights path, or raise a clear error saying which file to put where (or what to install)."""
    path = fan_weights_path()
    if not path.is_file():
        raise InvertAvatarError(
            "asset_missing",
            f"The face-alignment (FAN) detector needs its weights file {FAN_WEIGHTS_FILE} in {path.parent}, "
            "and it is not there.",
            f"Download {FAN_WEIGHTS_URL} into {path.parent} (or set TORCH_HOME to a folder whose hub/checkpoints/ "
            "holds it), or use the default detector 'mediapipe', which needs no extra download.",
        )
    try:
        import face_alignment  # noqa: F401
    except ImportError as exc:
        raise InvertAvatarError(
            "missing_package", "The face-alignment package is not installed.",
            "Install it into the backend's environment with `pip install numba 'numpy<2'` and then "
            f"`pip install --no-deps {FACE_ALIGNMENT_REQUIREMENT}` (without --no-deps it pulls numpy 2 and a second "
            "opencv, which break the backend), or use the detector 'mediapipe'.",
        ) from exc
    return path


class FanDetector:
    """`Detector` with face-alignment's 2D FAN: 68 iBUG landmarks (``scheme = "ibug68"``).

    The face is found by MediaPipe (same several-faces policy and errors); FAN then refines 68 points inside the
    box spanned by MediaPipe's iBUG-68 correspondences, which is close to the detector boxes FAN was tuned for.
    ``blendshapes``, ``head_pose``, ``score`` and ``shape_residual`` are MediaPipe's.
    Runs on ``device`` (default: `invertavatar.device.select_device`), without test-time flipping to keep the CPU
    cost at one network pass per face.
    """

    name = "fan"
    scheme = "ibug68"

    def __init__(self, multiple_faces: str = "largest", device: object = None,
                 model_path: str | Path | None = None) -> None:
        weights = check_fan_available()
        import face_alignment
        import torch

        from invertavatar.device import select_device

        self.device = device if isinstance(device, torch.device) else select_device(
            None if device is None else str(device))
        self._mediapipe: MediaPipeDetector | None = MediaPipeDetector(multiple_faces, model_path)
        try:
            self._fan = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D, device=str(self.device), flip_input=False,
                face_detector="folder", compile=False,
            )
        except Exception as exc:  # noqa: BLE001 - torch.load raises many types on a damaged file (IndexError, ...)
            self.close()
            raise InvertAvatarError(
                "damaged_asset", f"Cannot load the FAN weights {weights}: {exc}.",
                f"Replace the file with a fresh download of {FAN_WEIGHTS_URL}.",
            ) from exc

    def close(self) -> None:
        """Release MediaPipe's graphs and drop the network."""
        if self._mediapipe is not None:
            self._mediapipe.close()
            self._mediapipe = None
        self._fan = None

    def __enter__(self) -> FanDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detect(self, image: np.ndarray, source: str = "image") -> Detection:
        """Detect the face in ``image`` (see `Detector.detect`); landmarks are the 68 iBUG points from FAN."""
        if self._mediapipe is None or self._fan is None:
            raise InvertAvatarError("detector_closed", "The FAN detector was already closed.",
                                    "Create a new detector with make_detector('fan').")
        rgb = as_rgb_uint8(image, source)
        found = self._mediapipe.detect(rgb, source)
        height, width = rgb.shape[:2]
        ibug_box = box_from_points(found.landmarks[MEDIAPIPE_TO_IBUG68], height, width)
        landmarks = self._fan.get_landmarks_from_image(rgb, detected_faces=[ibug_box.astype(np.float64)])
        if not landmarks:
            raise InvertAvatarError("no_face", f"FAN returned no landmarks for {source}.",
                                    "Try the default detector 'mediapipe'.")
        points = np.asarray(landmarks[0], dtype=np.float32)[:, :2]
        return Detection(
            box=found.box,
            landmarks=points,
            landmarks_z=None,
            scheme=self.scheme,
            blendshapes=found.blendshapes,
            head_pose=found.head_pose,
            faces_found=found.faces_found,
            warnings=found.warnings,
            score=found.score,
            shape_residual=found.shape_residual,
            blendshapes_valid=found.blendshapes_valid,
            source=source,
            image_size=(height, width),
        )
