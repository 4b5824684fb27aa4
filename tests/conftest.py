"""Test-wide set-up: offline assets, an isolated INVERTAVATAR_HOME, and shared fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ASSETS = REPO.parent / "shared" / "assets"


def _configure_environment() -> None:
    # Assets: an explicit offline folder, else shared/assets beside the clone, else the user's installed models.
    if not os.environ.get("INVERTAVATAR_ASSETS"):
        if SHARED_ASSETS.is_dir():
            os.environ["INVERTAVATAR_ASSETS"] = str(SHARED_ASSETS)
        else:
            from invertavatar import paths

            os.environ["INVERTAVATAR_ASSETS"] = str(paths.models_dir())
    # Tests never write into the user's data folder.
    os.environ["INVERTAVATAR_HOME"] = tempfile.mkdtemp(prefix="invertavatar-test-home-")
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="invertavatar-test-blender-"))


_configure_environment()


def pytest_collection_modifyitems(config, items) -> None:
    """Skip tests marked ``slow`` unless they are asked for (``-m slow``) or INVERTAVATAR_SLOW_TESTS=1."""
    if os.environ.get("INVERTAVATAR_SLOW_TESTS") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or INVERTAVATAR_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    return Path(os.environ["INVERTAVATAR_ASSETS"])


@pytest.fixture(scope="session")
def ict_model():
    from invertavatar.headmodel import load_head_model

    return load_head_model("ict")


@pytest.fixture(scope="session")
def astronaut():
    """scikit-image's astronaut photo (public domain), RGB uint8."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper():
    """matplotlib's grace_hopper.jpg (public domain), RGB uint8."""
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as img:
        import numpy as np

        return np.asarray(img.convert("RGB"))


def write_clip(path: Path, images, fps: int = 24, codec: str = "mpeg4") -> Path:
    """Encode RGB uint8 frames (an iterable) into an MP4 at ``path`` (the name's suffix does not matter)."""
    import av

    images = iter(images)
    first = next(images)
    height, width = first.shape[:2]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        # Near-lossless (4 bits a pixel): at the encoder's default rate a fast mouth lagged a frame behind in the
        # decoded video (MediaPipe read a 0.6 jaw as 0.37), which tests of tracking would blame on the tracker.
        stream.bit_rate = 4 * stream.width * stream.height * fps
        for image in [first, *images]:
            image = image[: stream.height, : stream.width]
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def clip_writer():
    """The function ``write_clip(path, images, fps=24)`` for tests that need a video."""
    return write_clip
