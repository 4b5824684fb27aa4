"""Inputs the acceptance tests and the benchmark make themselves: photos from packaged images, and a short clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def save_jpeg(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path, format="JPEG", quality=92)
    return path


def make_clip(path: Path, frames: int = 90, size: int = 320, fps: int = 25) -> Path:
    """An MPEG-4 clip of the astronaut's face drifting slowly across the frame (a head moving in front of a camera)."""
    import av

    image = astronaut()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            dx = int(20 * np.sin(2 * np.pi * i / frames))
            dy = int(10 * np.cos(2 * np.pi * i / frames))
            crop = image[20 + dy:20 + dy + 360, 80 + dx:80 + dx + 360]
            frame = np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
