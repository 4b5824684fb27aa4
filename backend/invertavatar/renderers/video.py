"""Streamed video encoding with PyAV: frames are encoded as they come, never collected in memory."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InvertAvatarError

# H.264 where the PyAV build has an encoder for it (its wheels carry libx264), MPEG-4 part 2 otherwise.
CODECS = ("libx264", "libopenh264", "mpeg4")


class VideoWriter:
    """``with VideoWriter(path, fps) as out: out.write(rgb_uint8)``; the size is taken from the first frame.

    The file is written under a temporary name and renamed when closed without error, so a cancelled or failed
    reenactment leaves no half-written video behind.
    """

    def __init__(self, path: Path | str, fps: float, codec: str | None = None) -> None:
        if not np.isfinite(fps) or fps <= 0:
            raise InvertAvatarError("invalid_option", f"The frame rate must be positive, got {fps}.",
                                    "Pass --fps, or drive with a clip or tracks.json that says its rate.")
        self.path = Path(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.codec = codec
        self.frames = 0
        self._container = None
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        return self

    def _open(self, width: int, height: int) -> None:
        import av

        name = self.codec or next((c for c in CODECS if c in av.codecs_available), "mpeg4")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.partial), "w", format="mp4")
        self._stream = self._container.add_stream(name, rate=self.fps)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        if name == "mpeg4":
            self._stream.bit_rate = 4_000_000  # the default is blocky at portrait sizes

    def write(self, image: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame (odd sizes are cropped by a pixel: yuv420p needs even sizes)."""
        import av

        image = np.asarray(image, np.uint8)
        if self._stream is None:
            self._open(image.shape[1] - image.shape[1] % 2, image.shape[0] - image.shape[0] % 2)
        frame = np.ascontiguousarray(image[: self._stream.height, : self._stream.width])
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def __exit__(self, kind, value, traceback) -> None:
        if self._container is not None:
            try:
                if kind is None:
                    for packet in self._stream.encode():
                        self._container.mux(packet)
            finally:
                self._container.close()
        if kind is None and self.frames:
            self.partial.replace(self.path)
        else:
            self.partial.unlink(missing_ok=True)
