"""Frame sources: image files, folders of images and video clips, decoded by content and streamed.

A clip is decoded one frame at a time (PyAV); nothing holds the whole clip in memory. Images honour their EXIF
orientation. Very large images are decoded reduced (JPEG draft mode) or refused before they are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InvertAvatarError

IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}
#: Images above this many pixels are decoded reduced (JPEG) or refused (other formats) instead of risking memory.
MAX_DECODE_PIXELS = 64_000_000
#: Frames are downscaled so that their longer side is at most this (detection and fitting gain nothing above it).
MAX_SIDE = 2048


@dataclass
class Frame:
    """One decoded frame: its index in the source, its time in seconds, and the RGB uint8 image (H, W, 3)."""

    index: int
    time: float
    image: np.ndarray
    source: str

    @property
    def label(self) -> str:
        """How errors name this frame: the file for a photo, file and frame number for a clip."""
        return self.source if self.index == 0 and self.time == 0.0 else f"{self.source} frame {self.index}"


@dataclass
class SourceInfo:
    kind: str  # "image" or "video"
    name: str
    width: int
    height: int
    fps: float | None
    frame_count: int | None


def _downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    import cv2

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _unreadable(path: Path, what: str) -> InvertAvatarError:
    return InvertAvatarError("unreadable_input", f"{path.name}: {what}",
                             "Use a photo (JPEG, PNG, WebP, BMP, TIFF) or a video clip (MP4, MOV, MKV, WebM, AVI).")


class ImageSource:
    """A single photo."""

    def __init__(self, path: Path, max_side: int = MAX_SIDE) -> None:
        from PIL import Image

        self.path = path
        self.max_side = max_side
        try:
            with Image.open(path) as probe:
                fmt, size = probe.format, probe.size
        except Exception as exc:  # PIL raises many types for foreign data
            raise _unreadable(path, "not an image PIL can read") from exc
        if fmt not in IMAGE_FORMATS:
            raise _unreadable(path, f"unsupported image format {fmt}")
        if size[0] * size[1] > MAX_DECODE_PIXELS and fmt not in ("JPEG", "MPO"):
            raise InvertAvatarError(
                "image_too_large", f"{path.name} is {size[0]}×{size[1]} pixels, too large to decode safely.",
                f"Resize it below {MAX_DECODE_PIXELS // 1_000_000} megapixels (or save it as JPEG) and try again.")
        self.info = SourceInfo("image", path.name, size[0], size[1], None, 1)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.read(), self.path.name)

    def read(self) -> np.ndarray:
        from PIL import Image, ImageOps

        Image.MAX_IMAGE_PIXELS = None  # our own size check above replaces PIL's bomb guard
        try:
            with Image.open(self.path) as img:
                if img.size[0] * img.size[1] > MAX_DECODE_PIXELS:
                    img.draft("RGB", (self.max_side, self.max_side))  # JPEG decodes at 1/2..1/8 scale
                img = ImageOps.exif_transpose(img)
                rgb = np.asarray(img.convert("RGB"))
        except Exception as exc:
            raise _unreadable(self.path, f"the image data is damaged ({exc.__class__.__name__})") from exc
        if rgb.size == 0:
            raise _unreadable(self.path, "the image is empty")
        return np.ascontiguousarray(_downscale(rgb, self.max_side))

    def close(self) -> None:
        pass


class VideoSource:
    """A clip decoded as a stream with PyAV; the display rotation is applied to every frame."""

    def __init__(self, path: Path, max_side: int = MAX_SIDE) -> None:
        import av

        self.path = path
        self.max_side = max_side
        try:
            self._container = av.open(str(path))
        except Exception as exc:
            raise _unreadable(path, "neither an image nor a video that can be decoded") from exc
        if not self._container.streams.video:
            self._container.close()
            raise _unreadable(path, "the file has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        self.info = SourceInfo("video", path.name, stream.codec_context.width, stream.codec_context.height, fps,
                               stream.frames or None)
        self._stream = stream

    def __iter__(self) -> Iterator[Frame]:
        decoded = 0
        try:
            for packet_frame in self._container.decode(self._stream):
                image = packet_frame.to_ndarray(format="rgb24")
                rotation = int(getattr(packet_frame, "rotation", 0) or 0) % 360
                if rotation:
                    image = np.rot90(image, k=rotation // 90)  # PyAV reports counter-clockwise degrees
                time = float(packet_frame.time) if packet_frame.time is not None else decoded / (self.info.fps or 30)
                yield Frame(decoded, time, np.ascontiguousarray(_downscale(image, self.max_side)), self.path.name)
                decoded += 1
        except InvertAvatarError:
            raise
        except Exception as exc:
            if decoded == 0:
                raise _unreadable(self.path, f"the video data is damaged ({exc.__class__.__name__})") from exc
            # A truncated clip: keep the frames decoded so far, the caller sees the shorter count.
        if decoded == 0:
            raise _unreadable(self.path, "the clip holds no decodable frame")

    def close(self) -> None:
        self._container.close()


FrameSource = ImageSource | VideoSource


def open_source(path: Path | str, max_side: int = MAX_SIDE) -> FrameSource:
    """Open a photo or a clip, deciding by content (never by the file name)."""
    path = Path(path)
    if not path.is_file():
        raise InvertAvatarError("unreadable_input", f"{path} does not exist or is not a file.",
                                "Check the path; folders are expanded with expand_inputs().")
    if path.stat().st_size == 0:
        raise _unreadable(path, "the file is empty")
    try:
        return ImageSource(path, max_side)
    except InvertAvatarError as exc:
        if exc.code == "image_too_large":
            raise
    return VideoSource(path, max_side)


def expand_inputs(paths: list[Path | str]) -> list[Path]:
    """Files as given, folders expanded to their files (sorted, hidden files skipped)."""
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir() if p.is_file() and not p.name.startswith(".")))
        else:
            files.append(item)
    if not files:
        raise InvertAvatarError("no_input", "No input files were given (or the folder is empty).",
                                "Pass one or more photos, a folder of photos, or a video clip.")
    return files
