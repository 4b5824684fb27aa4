"""FBX and GLB export presets keep shape keys and their animation: export, re-import, compare frame-exact."""

import json
import struct

import numpy as np
import pytest

import ict_bundle
from blender_addon.core.arkit import ARKIT_NAMES


@pytest.fixture()
def animated_avatar(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    bpy.context.scene.invertavatar.animate_on_import = False
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    tracks = ict_bundle.synthetic_tracks(8, fps=24.0, seed=5)
    (tmp_path / "tracks.json").write_text(json.dumps(tracks))
    bpy.ops.invertavatar.apply_tracks(filepath=str(tmp_path / "tracks.json"))
    expected = np.array([f["arkit"] for f in tracks["frames"]], np.float32)
    return bpy, bpy.context.view_layer.objects.active, expected


def _all_fcurves(action):
    """F-curves of every slot (Blender 4.4+ layered actions) or of the legacy action (4.2/4.3)."""
    if "layers" in action.bl_rna.properties:
        return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                for fc in bag.fcurves]
    return list(action.fcurves)


def _reimported_values(bpy, frames):
    """Shape-key names and, per ARKit name, the values at ``frames`` of the re-imported mesh's animation."""
    heads = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys is not None]
    assert len(heads) == 1, [o.name for o in bpy.data.objects]
    key = heads[0].data.shape_keys
    names = [k.name for k in key.key_blocks]
    # FBX assigns the action; the glTF importer stashes it on an NLA track: look in every action's curves.
    curves = {fc.data_path: fc for action in bpy.data.actions for fc in _all_fcurves(action)
              if fc.data_path.startswith("key_blocks")}
    values = {n: [curves[f'key_blocks["{n}"].value'].evaluate(f) for f in frames]
              for n in ARKIT_NAMES if f'key_blocks["{n}"].value' in curves}
    return names, values


def _export(bpy, head, tmp_path, fmt):
    assert bpy.ops.invertavatar.export(filepath=str(tmp_path / f"avatar.{fmt.lower()}"), format=fmt) == {"FINISHED"}
    path = tmp_path / f"avatar.{fmt.lower()}"
    assert path.stat().st_size > 100_000
    bpy.ops.wm.read_homefile(use_empty=True)
    return path


def test_fbx_round_trip(animated_avatar, tmp_path):
    bpy, head, expected = animated_avatar
    path = _export(bpy, head, tmp_path, "FBX")
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0)
    names, values = _reimported_values(bpy, range(1, 9))
    assert names[1:] == list(ARKIT_NAMES) and len(names) == 53
    assert set(values) == set(ARKIT_NAMES)  # every curve survives (the preset disables curve simplification)
    for i, name in enumerate(ARKIT_NAMES):
        np.testing.assert_allclose(values[name], expected[:, i], atol=1e-4, err_msg=name)
    assert any(o.type == "ARMATURE" for o in bpy.data.objects)


def test_glb_round_trip(animated_avatar, tmp_path):
    bpy, head, expected = animated_avatar
    path = _export(bpy, head, tmp_path, "GLB")
    # One glTF animation per clip, carrying the morph weights and the bones together (what engines play).
    raw = path.read_bytes()
    gltf = json.loads(raw[20:20 + struct.unpack("<I", raw[12:16])[0]])
    assert len(gltf["animations"]) == 1
    assert {c["target"]["path"] for c in gltf["animations"][0]["channels"]} >= {"weights", "rotation"}
    assert gltf["meshes"][0]["extras"]["targetNames"] == list(ARKIT_NAMES)
    bpy.ops.import_scene.gltf(filepath=str(path))
    names, values = _reimported_values(bpy, range(1, 9))
    assert set(names) >= set(ARKIT_NAMES) and len([n for n in names if n in ARKIT_NAMES]) == 52
    assert len(values) == 52
    for i, name in enumerate(ARKIT_NAMES):
        np.testing.assert_allclose(values[name], expected[:, i], atol=1e-4, err_msg=name)
