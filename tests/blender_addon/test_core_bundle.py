"""The add-on's bundle reader against docs/bundle-format.md (no bpy)."""

import json
import shutil
import zipfile

import numpy as np
import pytest

from blender_addon.core.arkit import ARKIT_NAMES
from blender_addon.core.bundle import extract_bundle_zip, read_bundle
from blender_addon.core.errors import AddonError


def test_reads_ict_bundle(ict_bundle_dir, ict_mesh_arrays):
    bundle = read_bundle(ict_bundle_dir)
    assert bundle.vertices.shape == (26719, 3)
    assert tuple(bundle.expression_names) == ARKIT_NAMES
    assert bundle.expression_available.sum() == 51 and not bundle.expression_available[ARKIT_NAMES.index("tongueOut")]
    np.testing.assert_array_equal(bundle.expression_deltas, ict_mesh_arrays["expression_deltas"])
    assert set(bundle.textures) == {"albedo", "coverage"}
    assert bundle.tracks.arkit.shape == (24, 52) and bundle.tracks.fps == 30.0
    assert bundle.coverage == pytest.approx(0.41)


def _copy(src, tmp_path):
    dst = tmp_path / "copy.avatar"
    shutil.copytree(src, dst)
    return dst


def test_damaged_file_is_refused(ict_bundle_dir, tmp_path):
    bundle = _copy(ict_bundle_dir, tmp_path)
    with open(bundle / "textures" / "albedo.png", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(AddonError, match="albedo.png is damaged") as err:
        read_bundle(bundle)
    assert err.value.code == "bad_bundle" and err.value.hint


def test_newer_version_is_refused(ict_bundle_dir, tmp_path):
    bundle = _copy(ict_bundle_dir, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 2
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AddonError, match="format version 2") as err:
        read_bundle(bundle)
    assert "Update" in err.value.hint


def test_missing_manifest(tmp_path):
    with pytest.raises(AddonError, match="manifest.json is missing"):
        read_bundle(tmp_path)


def test_zip_with_unsafe_path_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(AddonError, match="unsafe path"):
        extract_bundle_zip(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_bad_tracks_are_refused(ict_bundle_dir, tmp_path):
    bundle = _copy(ict_bundle_dir, tmp_path)
    tracks = json.loads((bundle / "tracks.json").read_text())
    tracks["frames"][3]["index"] = tracks["frames"][2]["index"]
    (bundle / "tracks.json").write_text(json.dumps(tracks))
    manifest = json.loads((bundle / "manifest.json").read_text())
    import hashlib

    manifest["files"]["tracks.json"] = hashlib.sha256((bundle / "tracks.json").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AddonError, match="strictly increasing"):
        read_bundle(bundle)
