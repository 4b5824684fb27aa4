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
    """Head-and-shoulders crops of astronaut (smaller face) and grace_hopper (larger face) side by side.

    Crops, because MediaPipe's short-range face detector sees the whole frame at 128 px and misses a face that is
    only a few percent of a wide canvas.
    """
    left = astronaut[0:300, 100:400]
    right = grace_hopper[40:440, 60:460]
    canvas = np.full((max(left.shape[0], right.shape[0]), left.shape[1] + right.shape[1], 3), 128, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1]:] = right
    return canvas
