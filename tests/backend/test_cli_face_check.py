"""`invertavatar reconstruct` and the human-face check: the artwork warning in the output, the refusal with its
hint, --accept-any-face, and no MediaPipe/TFLite log line on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from invertavatar.detect.native_logs import is_chatter

DOG = Path(__file__).resolve().parents[2].parent / "shared" / "devset" / "photos" / "animal" / "sam_dog.jpg"


def reconstruct(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invertavatar.cli", "reconstruct", *args], capture_output=True,
                          text=True, timeout=600)


def native_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if is_chatter(line) or "W0000" in line or "INFO:" in line]


def test_an_artwork_is_built_with_a_warning_and_no_mediapipe_lines(tmp_path, astronaut):
    grey = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    toned = np.clip(grey.astype(np.float32) * np.array([1.0, 0.98, 0.95]), 0, 255).astype(np.uint8)
    photo = tmp_path / "bronze.png"
    Image.fromarray(toned).save(photo)
    run = reconstruct(str(photo), "-o", str(tmp_path / "b.avatar"), "--texture-size", "128")
    assert run.returncode == 0, run.stderr
    assert "warning: bronze.png: this looks like an artwork: the texture is the artwork's colours." in run.stdout
    assert native_lines(run.stderr) == [], run.stderr


def test_help_names_accept_any_face():
    run = subprocess.run([sys.executable, "-m", "invertavatar.cli", "reconstruct", "--help"], capture_output=True,
                         text=True)
    assert "--accept-any-face" in run.stdout


def test_an_animal_is_refused_with_a_hint(tmp_path):
    """A devset photo on which MediaPipe reports a (false) human face; read from ../shared at test time."""
    if not DOG.is_file():
        pytest.skip(f"the devset is not at {DOG.parent}")
    run = reconstruct(str(DOG), "-o", str(tmp_path / "dog.avatar"))
    assert run.returncode == 1
    assert "error: sam_dog.jpg does not show a human face" in run.stderr
    assert "hint:" in run.stderr and "--accept-any-face" in run.stderr
    assert "Traceback" not in run.stderr and native_lines(run.stderr) == []
    assert not (tmp_path / "dog.avatar").exists()
