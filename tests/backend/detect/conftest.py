"""Shared fixtures for the detector tests: one MediaPipe detector per session (building it takes ~0.1 s of graph
set-up, and each test must not leak MediaPipe graphs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invertavatar.detect import make_detector
from invertavatar.detect.mediapipe_detector import find_task_file


@pytest.fixture(scope="session")
def task_path() -> Path:
    return find_task_file()


@pytest.fixture(scope="session")
def detector():
    with make_detector("mediapipe") as det:
        yield det


@pytest.fixture(scope="session")
def two_faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> np.ndarray:
    """astronaut (small face) and grace_hopper (larger face) side by side on one canvas."""
    height = max(astronaut.shape[0], grace_hopper.shape[0])
    canvas = np.full((height, astronaut.shape[1] + grace_hopper.shape[1], 3), 128, np.uint8)
    canvas[: astronaut.shape[0], : astronaut.shape[1]] = astronaut
    canvas[: grace_hopper.shape[0], astronaut.shape[1]:] = grace_hopper
    return canvas
