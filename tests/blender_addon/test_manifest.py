"""The extension manifest: Blender's own validator accepts it; permissions, licence and version floor are right;
the package imports nothing heavy (no torch) and core/ imports without bpy."""

import ast
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

ADDON = Path(__file__).resolve().parents[2] / "blender_addon"


def test_blender_validator_accepts_the_manifest():
    bpy_dir = Path(importlib.util.find_spec("bpy").origin).parent
    tool = next(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    result = subprocess.run([sys.executable, str(tool), "validate", str(ADDON)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "Success" in result.stdout, result.stdout + result.stderr


def test_manifest_fields():
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
    assert manifest["id"] == "invertavatar" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0" and manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"network", "files"} and all(manifest["permissions"].values())
    assert len(manifest["tagline"]) <= 64 and not manifest["tagline"].endswith(".")


def test_only_stdlib_bpy_numpy_and_core_is_bpy_free():
    allowed_third_party = {"bpy", "bpy_extras", "numpy", "mathutils", "gpu", "gpu_extras", "blf"}  # Blender's own
    for path in ADDON.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            for root in roots:
                assert root in sys.stdlib_module_names or root in allowed_third_party, (path, root)
                if path.parent.name == "core":
                    assert root not in {"bpy", "bpy_extras", "mathutils", "gpu", "gpu_extras", "blf"}, (path, root)
