"""FaceVerse: a synthetic file with the real key layout loads and evaluates; bad files fail clearly and safely."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.headmodel.faceverse import load_faceverse


def synthetic_faceverse(n_vertices: int = 600, n_id: int = 150, n_ex: int = 171, arkit: bool = False) -> dict:
    """Random bases with FaceVerse v3's layout: flat (N*3,) mean, (N*3, K) bases, eyeballs at the end."""
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 5, (n_vertices, 3)).astype(np.float32)
    eye_start = n_vertices - 40
    mean[eye_start:eye_start + 20] = rng.normal([3.2, 3.5, 8.0], 0.3, (20, 3))
    mean[eye_start + 20:] = rng.normal([-3.2, 3.5, 8.0], 0.3, (20, 3))
    model = {
        "meanshape": mean.reshape(-1),
        "idBase": rng.normal(0, 0.1, (n_vertices * 3, n_id)).astype(np.float32),
        "exBase": rng.normal(0, 0.1, (n_vertices * 3, n_ex)).astype(np.float32),
        "meantex": rng.uniform(0, 255, n_vertices * 3).astype(np.float32),
        "tri": rng.integers(0, n_vertices, (900, 3)).astype(np.int64),
        "uv_per_ver": rng.uniform(0, 1, (n_vertices, 2)).astype(np.float32),
        "mediapipe_keypoints": rng.integers(0, n_vertices, 478).astype(np.int64),
        "ver_inds": np.array([eye_start, eye_start + 20, n_vertices], np.int64),
    }
    if arkit:
        ex52 = np.zeros((n_vertices * 3, 52), np.float32)
        jaw = ARKIT_NAMES.index("jawOpen")
        lower = mean[:, 1] < 0
        rotation = np.zeros((n_vertices, 3), np.float32)
        rotation[lower, 1] = -0.2 * (mean[lower, 2] + 1.0)
        rotation[lower, 2] = 0.2 * (mean[lower, 1] - 2.0)
        ex52[:, jaw] = rotation.reshape(-1)
        model["exBase_52"] = ex52
    return model


def save(tmp_path, model: dict, name: str = "faceverse_v3_1.npy"):
    path = tmp_path / name
    np.save(path, model, allow_pickle=True)
    return path


def test_v3_without_arkit_basis_loads_evaluates_and_is_honest(tmp_path):
    model = load_faceverse(save(tmp_path, synthetic_faceverse()))
    assert model.n_vertices == 600 and model.n_identity == 150 and model.n_expression == 171
    assert model.expression_names[0] == "faceverse_000"
    assert set(model.arkit.missing) == set(ARKIT_NAMES)  # needs a transfer: nothing is invented
    vertices = model.evaluate(torch.ones(2, 150) * 0.1, torch.zeros(2, 171))
    assert vertices.shape == (2, 600, 3) and torch.isfinite(vertices).all()
    assert model.rig.weights.shape == (600, 6) and np.allclose(model.rig.weights.sum(1), 1)
    assert len(model.extras["mediapipe_keypoints"]) == 478


def test_arkit_basis_maps_directly(tmp_path):
    model = load_faceverse(save(tmp_path, synthetic_faceverse(arkit=True)))
    assert model.expression_names == ARKIT_NAMES and model.arkit.missing == ()
    jaw = ARKIT_NAMES.index("jawOpen")
    np.testing.assert_allclose(model.arkit_deltas()[jaw], model.expression_basis[jaw])


def test_truncated_file_gives_clear_error(tmp_path):
    path = save(tmp_path, synthetic_faceverse())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InvertAvatarError) as info:
        load_faceverse(path)
    assert info.value.code == "faceverse_damaged" and "FaceVerse" in info.value.hint


def test_foreign_npy_gives_clear_error(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((10, 3), np.float32))
    with pytest.raises(InvertAvatarError, match="not a FaceVerse dict"):
        load_faceverse(path)
    incomplete = synthetic_faceverse()
    del incomplete["idBase"]
    with pytest.raises(InvertAvatarError, match="lacks"):
        load_faceverse(save(tmp_path, incomplete, "incomplete.npy"))


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/should-not-exist-invertavatar", "w"))


def test_pickled_code_is_never_executed(tmp_path):
    path = tmp_path / "evil.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump({"meanshape": _Exploit()}, handle)
    with pytest.raises(InvertAvatarError, match="refused global"):
        load_faceverse(path)
    import os

    assert not os.path.exists("/tmp/should-not-exist-invertavatar")


def test_tiles_come_from_the_files_uv_chart(tmp_path):
    raw = synthetic_faceverse()
    model = load_faceverse(save(tmp_path, raw))
    n = model.n_vertices
    np.testing.assert_allclose(model.uv[:n], raw["uv_per_ver"])  # per-vertex UVs kept for the mesh condition
    assert model.uv.shape[0] > n and model.face_uv.max() < len(model.uv)
    eyes = np.concatenate([model.regions["eyeball_left"], model.regions["eyeball_right"]])
    on_eye = np.isin(model.faces[:, :3], eyes).all(1)
    names = np.array(model.material_names)[model.face_material]
    assert set(names[on_eye]) <= {"M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight"}
    assert set(names[~on_eye]) <= {"M_Face", "M_BackHead"}
    assert str(model.extras["file_unit"]) == "cm"


def test_units_follow_the_file(tmp_path):
    raw = synthetic_faceverse()
    raw["meanshape"] = raw["meanshape"] * 10.0  # the same head stored in millimetres (as v3.6 is)
    model = load_faceverse(save(tmp_path, raw, "mm.npy"))
    assert str(model.extras["file_unit"]) == "mm"
    eye_l, eye_r = (model.vertices[model.regions[r]].mean(0) for r in ("eyeball_left", "eyeball_right"))
    assert 0.05 < np.linalg.norm(eye_l - eye_r) < 0.08
