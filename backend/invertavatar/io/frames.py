"""Frame sources: image files, folders of images and video clips, decoded by content and streamed.

A clip is decoded one frame at a time (PyAV); nothing holds the whole clip in memory. Images honour their EXIF
orientation. Every size check reads the declared size from the header, before a single pixel is decoded:

- a JPEG above ``MAX_DECODE_PIXELS`` is decoded reduced (draft mode, 1/2..1/8 scale) and one above
  ``MAX_JPEG_PIXELS`` is refused (a progressive JPEG keeps all its coefficients in memory however it is scaled);
- any other image above ``MAX_DECODE_PIXELS`` is refused;
- a video stream whose frames are larger than ``MAX_VIDEO_PIXELS`` is refused, and the decoder itself is told the
  same cap (FFmpeg's ``max_pixels``), so a container that declares a small size for large frames fails cleanly.

Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` is never changed: these caps are below its own bomb guard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InvertAvatarError

IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}
#: Images above this many pixels are decoded reduced (JPEG) or refused (other formats) instead of risking memory.
MAX_DECODE_PIXELS = 64_000_000
#: JPEGs declaring more pixels than this are refused (a 108-megapixel phone photo still passes).
MAX_JPEG_PIXELS = 120_000_000
#: Video frames larger than this are refused (8K UHD, 7680×4320, is 33.2 megapixels).
MAX_VIDEO_PIXELS = 36_000_000
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


def _too_large(path: Path, what: str, width: int, height: int, cap: int, hint: str) -> InvertAvatarError:
    return InvertAvatarError(
        f"{what}_too_large", f"{path.name} declares {width}×{height} pixels, more than the {cap / 1e6:g} megapixels "
        f"this backend decodes.", hint)


def _image_cap(fmt: str) -> int:
    return MAX_JPEG_PIXELS if fmt in ("JPEG", "MPO") else MAX_DECODE_PIXELS


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
        except Image.DecompressionBombError as exc:  # over Pillow's own guard, far over ours
            declared = re.search(r"\((\d+) pixels\)", str(exc))
            what = f"{int(declared.group(1)) / 1e6:g} megapixels" if declared else "more pixels than Pillow allows"
            raise InvertAvatarError(
                "image_too_large", f"{path.name} declares {what}, more than this backend decodes.",
                f"Resize it below {MAX_DECODE_PIXELS // 1_000_000} megapixels and try again.") from exc
        except Exception as exc:  # PIL raises many types for foreign data
            raise _unreadable(path, "not an image PIL can read") from exc
        if fmt not in IMAGE_FORMATS:
            raise _unreadable(path, f"unsupported image format {fmt}")
        if size[0] * size[1] > _image_cap(fmt):
            jpeg = fmt in ("JPEG", "MPO")
            raise _too_large(path, "image", size[0], size[1], _image_cap(fmt),
                             f"Resize it below {_image_cap(fmt) // 1_000_000} megapixels"
                             f"{'' if jpeg else ' (or save it as JPEG)'} and try again.")
        self.format = fmt
        self.info = SourceInfo("image", path.name, size[0], size[1], None, 1)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.read(), self.path.name)

    def check(self) -> None:
        """Prove the pixel data decodes, cheaply: a JPEG at its smallest draft scale (1/8), other formats whole
        (they are at most ``MAX_DECODE_PIXELS``). The pipeline's own read decodes it again at working size."""
        self._decode(check_side=256)

    def read(self) -> np.ndarray:
        return self._decode()

    def _decode(self, check_side: int | None = None) -> np.ndarray:
        from PIL import Image, ImageOps

        try:
            with Image.open(self.path) as img:
                # The file may have changed since __init__: check the size again, as read now.
                if img.format != self.format or img.size[0] * img.size[1] > _image_cap(self.format):
                    raise _too_large(self.path, "image", img.size[0], img.size[1], _image_cap(self.format),
                                     "Resize it and try again.")
                if check_side is not None:
                    img.draft("RGB", (check_side, check_side))
                    img.load()
                    return np.empty((0, 0, 3), np.uint8)
                if img.size[0] * img.size[1] > MAX_DECODE_PIXELS:
                    img.draft("RGB", (self.max_side, self.max_side))  # JPEG decodes at 1/2..1/8 scale
                img = ImageOps.exif_transpose(img)
                rgb = np.asarray(img.convert("RGB"))
        except InvertAvatarError:
            raise
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
            # max_pixels reaches the decoders that probe the streams here, before any size is known to us.
            self._container = av.open(str(path), options={"max_pixels": str(MAX_VIDEO_PIXELS)})
        except Exception as exc:
            raise _unreadable(path, "neither an image nor a video that can be decoded") from exc
        if not self._container.streams.video:
            self._container.close()
            raise _unreadable(path, "the file has no video stream")
        stream = self._container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:  # the probe could not open the decoder: over max_pixels, or broken
            self._container.close()
            raise _unreadable(path, f"its video stream cannot be decoded (damaged, or frames larger than "
                                    f"{MAX_VIDEO_PIXELS / 1e6:g} megapixels)")
        if width * height > MAX_VIDEO_PIXELS:
            self._container.close()
            raise _too_large(path, "video", width, height, MAX_VIDEO_PIXELS,
                             "Re-encode the clip at 4K (3840×2160) or less and try again.")
        # The container's size may lie: the decoder refuses any frame over the cap before allocating it.
        stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(MAX_VIDEO_PIXELS)}
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
                raise _unreadable(self.path, f"the video data is damaged, or its frames are larger than "
                                  f"{MAX_VIDEO_PIXELS / 1e6:g} megapixels ({exc.__class__.__name__})") from exc
            # A truncated clip: keep the frames decoded so far, the caller sees the shorter count.
        if decoded == 0:
            raise _unreadable(self.path, f"the clip holds no decodable frame (damaged, or frames larger than "
                                         f"{MAX_VIDEO_PIXELS / 1e6:g} megapixels)")

    def check(self) -> None:
        """Decode the first frame (under the decoder's pixel cap)."""
        for _ in self:
            return

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
