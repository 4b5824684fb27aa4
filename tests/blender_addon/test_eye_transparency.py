"""The eye shells and the eyelash cards are transparent in Blender and stay so in the exported GLB and FBX."""

import json
import struct

import numpy as np

from blender_addon.scene.material import OVERLAY_PARTS


def _import(bpy, ict_bundle_dir):
    bpy.context.scene.invertavatar.animate_on_import = False
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    return bpy.context.view_layer.objects.active


def _alpha(material) -> float:
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    return float(bsdf.inputs["Alpha"].default_value)


def test_lashes_and_shells_are_transparent_in_blender(clean_scene, ict_bundle_dir, ict_mesh_arrays):
    head = _import(clean_scene, ict_bundle_dir)
    names = [str(n) for n in ict_mesh_arrays["material_names"]]
    assert "M_EyeLashes" in OVERLAY_PARTS and "M_EyeLashes" in names
    index = np.zeros(len(head.data.polygons), np.int32)
    head.data.polygons.foreach_get("material_index", index)
    parts = np.asarray(ict_mesh_arrays["face_material"])
    lashes = parts == names.index("M_EyeLashes")
    skin = parts == names.index("M_Face")
    overlay = head.data.materials[int(index[lashes][0])]
    assert set(index[lashes]) == {index[lashes][0]} and _alpha(overlay) == 0.0
    assert _alpha(head.data.materials[int(index[skin][0])]) == 1.0  # the skin stays opaque


def test_glb_writes_the_overlay_material_transparent(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    _import(bpy, ict_bundle_dir)
    path = tmp_path / "avatar.glb"
    assert bpy.ops.invertavatar.export(filepath=str(path), format="GLB") == {"FINISHED"}
    raw = path.read_bytes()
    gltf = json.loads(raw[20:20 + struct.unpack("<I", raw[12:16])[0]])
    materials = {m["name"]: m for m in gltf["materials"]}
    overlay = next(m for name, m in materials.items() if name.endswith("_eye_overlay"))
    assert overlay.get("alphaMode") in ("MASK", "BLEND")
    assert overlay["pbrMetallicRoughness"]["baseColorFactor"][3] == 0.0
    skin = next(m for name, m in materials.items() if name.endswith("_skin"))
    assert skin.get("alphaMode", "OPAQUE") == "OPAQUE"


def test_fbx_writes_the_overlay_material_transparent(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    _import(bpy, ict_bundle_dir)
    path = tmp_path / "avatar.fbx"
    assert bpy.ops.invertavatar.export(filepath=str(path), format="FBX") == {"FINISHED"}
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path))
    overlay = next(m for m in bpy.data.materials if m.name.endswith("_eye_overlay"))
    skin = next(m for m in bpy.data.materials if m.name.endswith("_skin"))
    assert _alpha(overlay) < 1e-3 and _alpha(skin) == 1.0
