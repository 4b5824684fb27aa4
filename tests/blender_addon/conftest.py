"""Fixtures for the add-on tests: isolated Blender user folder, the installed extension, ICT bundles, stub server."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# Before anything imports bpy: keep Blender's config, extensions and caches out of the real home.
_USER_RESOURCES = tempfile.mkdtemp(prefix="invertavatar-blender-")
os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `blender_addon.core` for the bpy-free tests

import ict_bundle  # noqa: E402


@pytest.fixture(scope="session")
def ict_mesh_arrays() -> dict:
    return ict_bundle.build_mesh_arrays()


@pytest.fixture(scope="session")
def ict_bundle_dir(tmp_path_factory, ict_mesh_arrays) -> Path:
    """A full ICT bundle (26,719 vertices, 52 ARKit keys, 512² texture) with a 24-frame synthetic clip."""
    folder = tmp_path_factory.mktemp("bundles") / "ict.avatar"
    return ict_bundle.write_ict_bundle(folder, tracks=ict_bundle.synthetic_tracks(24), mesh=ict_mesh_arrays)


@pytest.fixture(scope="session")
def ict_atlas_mesh(ict_mesh_arrays) -> dict:
    """The ICT mesh with non-overlapping skin UVs, like the backend's atlas (hair attaches through them)."""
    return ict_bundle.with_atlas_uv(ict_mesh_arrays)


@pytest.fixture(scope="session")
def ict_hair(ict_atlas_mesh) -> tuple[dict, dict]:
    """Synthetic guide curves on the ICT head (scalp and beard) and their hair.json."""
    return ict_bundle.synthetic_hair(ict_atlas_mesh)


@pytest.fixture(scope="session")
def ict_hair_bundle_dir(tmp_path_factory, ict_atlas_mesh, ict_hair) -> Path:
    """The ICT bundle (no clip, atlas UVs) with the synthetic hair in ``hair/``."""
    folder = tmp_path_factory.mktemp("bundles") / "hairy.avatar"
    ict_bundle.write_ict_bundle(folder, mesh=ict_atlas_mesh)
    ict_bundle.write_hair(folder, *ict_hair)
    return folder


@pytest.fixture(scope="session")
def addon(tmp_path_factory):
    """The extension, installed and enabled once per session in the isolated user folder."""
    from addon_env import install_addon

    return install_addon(tmp_path_factory.mktemp("ext"))


@pytest.fixture()
def clean_scene(addon):
    """An empty scene; yields ``bpy`` and resets status/job state afterwards."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    wm = bpy.context.window_manager
    wm.invertavatar.status = ""
    wm.invertavatar.status_is_error = False
    wm.invertavatar.running = False
    yield bpy
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.fixture()
def scene(clean_scene, tmp_path):
    """A clean scene with one input file queued and the add-on pointed at a remote backend (the stub's token);
    yields ``(bpy, preferences)``."""
    import addon_env

    bpy = clean_scene
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(b"\x89PNG not really a photo; the stub does not decode it")
    assert bpy.ops.invertavatar.add_inputs(filepath=str(photo)) == {"FINISHED"}
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    prefs.backend_mode, prefs.token, prefs.read_timeout = "REMOTE", "secret", 10.0
    yield bpy, prefs
    prefs.backend_mode, prefs.token = "LOCAL", ""
