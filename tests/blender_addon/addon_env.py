"""Install the add-on into a headless bpy exactly as an artist would: as an extension zip (user repository).

``BLENDER_USER_RESOURCES`` must point at a temporary folder before ``bpy`` is imported (conftest does that).
"""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADDON_SRC = REPO / "blender_addon"
PACKAGE = "bl_ext.user_default.invertavatar"


def build_extension_zip(dest: Path) -> Path:
    """Zip the add-on folder with ``blender_manifest.toml`` at the archive root (what Blender installs)."""
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(ADDON_SRC.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(ADDON_SRC).as_posix())
    return dest


def install_addon(tmp_dir: Path):
    """Build, install and enable the extension; returns its top-level module."""
    import bpy

    zip_path = build_extension_zip(Path(tmp_dir) / "invertavatar.zip")
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    return sys.modules[PACKAGE]


def addon_module(name: str):
    """A submodule of the installed add-on, e.g. ``addon_module("core.bundle")``."""
    return importlib.import_module(f"{PACKAGE}.{name}")
