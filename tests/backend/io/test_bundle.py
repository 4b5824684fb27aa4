"""Avatar bundle v1: exact round trip, atomic writes, clear errors on damage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from invertavatar.errors import InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.io.bundle import Bundle, read_bundle, write_bundle


def small_bundle() -> Bundle:
    rng = np.random.default_rng(1)
    n = 5
    mesh = {
        "vertices": rng.normal(size=(n, 3)).astype(np.float32),
        "faces": np.array([[0, 1, 2, 3], [1, 2, 4, -1]], np.int32),
        "uv": rng.uniform(size=(6, 2)).astype(np.float32),
        "face_uv": np.array([[0, 1, 2, 3], [1, 2, 5, -1]], np.int32),
        "face_material": np.array([0, 1], np.int16),
        "material_names": np.array(["M_Face", "M_Teeth"]),
        "expression_names": np.array(ARKIT_NAMES),
        "expression_deltas": rng.normal(size=(52, n, 3)).astype(np.float32),
        "expression_available": np.arange(52) != 51,
        "bone_names": np.array(["root", "neck", "head", "jaw", "eye_L", "eye_R"]),
        "bone_parents": np.array([-1, 0, 1, 2, 2, 2], np.int32),
        "bone_heads": rng.normal(size=(6, 3)).astype(np.float32),
        "bone_tails": rng.normal(size=(6, 3)).astype(np.float32),
        "vertex_weights": np.full((n, 6), 1 / 6, np.float32),
    }
    tracks = {"fps": 30.0, "source": "clip.mp4", "arkit_names": list(ARKIT_NAMES),
              "frames": [{"index": 0, "time": 0.0, "arkit": [0.1] * 52, "head_rotation": [1, 0, 0, 0],
                          "head_translation": [0, 0, 0], "gaze": {"eye_L": [0, 0], "eye_R": [0, 0]}}]}
    return Bundle(manifest={"mode": "fit", "head_model": {"id": "test", "checksum": "0"},
                            "frames": {"seen": 1, "used": 1, "skipped": 0}, "coverage": 0.5},
                  mesh=mesh, albedo=rng.integers(0, 255, (16, 32, 3), dtype=np.uint8),
                  coverage=rng.integers(0, 255, (16, 32), dtype=np.uint8), tracks=tracks,
                  state={"fusion.safetensors": b"\x00\x01binary", "tracker.json": b"{}"})


def test_round_trip_is_exact(tmp_path):
    original = small_bundle()
    path = write_bundle(tmp_path / "a.avatar", original)
    loaded = read_bundle(path)
    for key, value in original.mesh.items():
        np.testing.assert_array_equal(loaded.mesh[key], value)
        assert loaded.mesh[key].dtype == value.dtype
    np.testing.assert_array_equal(loaded.albedo, original.albedo)
    np.testing.assert_array_equal(loaded.coverage, original.coverage)
    assert loaded.tracks == original.tracks and loaded.state == original.state
    assert loaded.manifest["format_version"] == 1 and loaded.manifest["units"] == "m"
    assert set(loaded.manifest["files"]) >= {"mesh.npz", "textures/albedo.png", "state/fusion.safetensors"}


def test_write_is_atomic_and_does_not_clobber(tmp_path):
    path = write_bundle(tmp_path / "a.avatar", small_bundle())
    with pytest.raises(InvertAvatarError, match="already exists"):
        write_bundle(path, small_bundle())
    bad = small_bundle()
    bad.mesh["vertex_weights"] = np.zeros((2, 6), np.float32)
    with pytest.raises(ValueError):
        write_bundle(path, bad, overwrite=True)
    read_bundle(path)  # the old bundle is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avatar"]  # no staging leftovers


@pytest.mark.parametrize("damage", ["missing_file", "bad_checksum", "newer_version", "not_json", "no_manifest",
                                    "outside_path"])
def test_damaged_bundle_gives_clear_error(tmp_path, damage):
    path = write_bundle(tmp_path / "a.avatar", small_bundle())
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if damage == "missing_file":
        (path / "textures" / "albedo.png").unlink()
    elif damage == "bad_checksum":
        with open(path / "mesh.npz", "r+b") as handle:
            handle.seek(100)
            handle.write(b"\xff")
    elif damage == "newer_version":
        manifest["format_version"] = 2
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "not_json":
        manifest_path.write_text("{")
    elif damage == "no_manifest":
        manifest_path.unlink()
    elif damage == "outside_path":
        manifest["files"]["../../etc/passwd"] = "0" * 64
        manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(InvertAvatarError) as info:
        read_bundle(path)
    assert info.value.code in {"bundle_damaged", "bundle_too_new", "bundle_missing"}
    assert info.value.hint
