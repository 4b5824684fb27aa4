"""Shared helpers for the server tests: a controllable job runner for in-process tests, and test images."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invertavatar.errors import CancelledError, InvertAvatarError
from invertavatar.server.config import ServerConfig
from invertavatar.server.worker import WorkItem


class GatedRunner:
    """Stands in for the pipeline when the queue layer itself is under test: each job waits for ``gate``,
    reports progress, honours ``cancel``, and writes a minimal bundle folder with a manifest."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.items: list[WorkItem] = []
        self.fail_with: BaseException | None = None

    def __call__(self, item: WorkItem, progress, cancel: threading.Event) -> dict:
        self.items.append(item)
        self.started.set()
        progress("detect", 0.25, "detecting")
        while not self.gate.wait(0.01):
            if cancel.is_set():
                raise CancelledError()
        if self.fail_with is not None:
            raise self.fail_with
        used = len(item.inputs)
        if item.refine is not None:
            used += json.loads((item.refine / "manifest.json").read_text())["frames"]["used"]
        manifest = {"format": "invertavatar-bundle", "frames": {"seen": used, "used": used, "skipped": 0}}
        item.output.mkdir()
        (item.output / "manifest.json").write_text(json.dumps(manifest))
        (item.output / "mesh.npz").write_bytes(b"\0" * 1000)
        progress("bundle", 1.0, "done")
        return manifest


def image_bytes(fmt: str = "JPEG", size: int = 64) -> bytes:
    """A small real image encoded in ``fmt``."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    return ServerConfig.create(tmp_path / "data", queue_size=2, max_file_bytes=200_000, max_job_bytes=300_000,
                               cleanup_interval_s=3600.0)


__all__ = ["GatedRunner", "image_bytes", "InvertAvatarError"]
