"""face-alignment (FAN) detector: a clear message without its weights; with weights (random ones here, saved the way
face-alignment stores them) it runs offline on the MediaPipe box and returns 68 iBUG points."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from invertavatar.detect import make_detector
from invertavatar.detect.fan_detector import FAN_WEIGHTS_FILE, fan_weights_dir
from invertavatar.errors import InvertAvatarError

needs_face_alignment = pytest.mark.skipif(importlib.util.find_spec("face_alignment") is None,
                                          reason="face-alignment is not installed (optional detector)")


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_missing_weights_name_the_file_and_folder(torch_home):
    with pytest.raises(InvertAvatarError) as err:
        make_detector("fan")
    assert err.value.code == "asset_missing"
    folder = torch_home / "hub" / "checkpoints"
    assert fan_weights_dir() == folder
    assert FAN_WEIGHTS_FILE in err.value.message and str(folder) in err.value.message
    assert "adrianbulat.com" in err.value.hint and "mediapipe" in err.value.hint


@pytest.fixture
def random_fan_weights(torch_home):
    """A FAN(4) state dict with random weights under the exact cache name (no download, nothing real)."""
    import torch
    from face_alignment.models import FAN

    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), folder / FAN_WEIGHTS_FILE)
    return folder / FAN_WEIGHTS_FILE


@needs_face_alignment
def test_fan_runs_offline_with_weights_present(random_fan_weights, astronaut, grace_hopper, two_faces):
    with make_detector("fan", device="cpu") as det:
        assert det.scheme == "ibug68" and str(det.device) == "cpu"
        found = det.detect(astronaut, "astronaut")
        assert found.scheme == "ibug68" and found.landmarks.shape == (68, 2) and found.landmarks_z is None
        assert np.isfinite(found.landmarks).all()
        # Random weights put the points anywhere, but always inside FAN's crop around the face box.
        x0, y0, x1, y1 = found.box
        side = max(x1 - x0, y1 - y0)
        assert (found.landmarks[:, 0] > x0 - side).all() and (found.landmarks[:, 0] < x1 + side).all()
        assert (found.landmarks[:, 1] > y0 - side).all() and (found.landmarks[:, 1] < y1 + side).all()
        # MediaPipe's blendshapes and pose come along.
        assert found.blendshapes.shape == (52,) and found.head_pose.shape == (4, 4)
        assert found.faces_found == 1
        several = det.detect(two_faces, "pair.png")
        assert several.faces_found == 2 and several.warnings
        with pytest.raises(InvertAvatarError) as err:
            det.detect(np.full((256, 256, 3), 90, np.uint8), "blank.png")
        assert err.value.code == "no_face"


@needs_face_alignment
def test_damaged_weights_give_a_clear_error(torch_home):
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / FAN_WEIGHTS_FILE).write_bytes(b"truncated download")
    with pytest.raises(InvertAvatarError) as err:
        make_detector("fan", device="cpu")
    assert err.value.code == "damaged_asset" and FAN_WEIGHTS_FILE in err.value.message


def test_missing_package_says_how_to_install(torch_home, monkeypatch):
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / FAN_WEIGHTS_FILE).write_bytes(b"weights are here; the package is not")
    monkeypatch.setitem(__import__("sys").modules, "face_alignment", None)  # makes `import face_alignment` fail
    with pytest.raises(InvertAvatarError) as err:
        make_detector("face-alignment")
    assert err.value.code == "missing_package"
    assert "face-alignment==1.5.0" in err.value.hint and "--no-deps" in err.value.hint
