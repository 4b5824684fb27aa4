"""Exports carry the hair as cards (FBX/glTF have no hair curves): textured, alpha-blended, skinned ribbons."""

import json
import struct

import numpy as np
import pytest


@pytest.fixture()
def hairy(clean_scene, ict_hair_bundle_dir):
    bpy = clean_scene
    bpy.context.scene.invertavatar.hair_density = 1.0
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json")) == {"FINISHED"}
    yield bpy, bpy.context.view_layer.objects.active
    bpy.context.scene.invertavatar.hair_density = 0.0


def _gltf(path):
    raw = path.read_bytes()
    return json.loads(raw[20:20 + struct.unpack("<I", raw[12:16])[0]])


def _export(bpy, tmp_path, fmt, **options):
    path = tmp_path / f"avatar.{fmt.lower()}"
    before = {s: len(getattr(bpy.data, s)) for s in ("objects", "meshes", "materials", "images")}
    assert bpy.ops.invertavatar.export(filepath=str(path), format=fmt, **options) == {"FINISHED"}
    # The cards exist only for the export: the scene is left as it was.
    assert {s: len(getattr(bpy.data, s)) for s in before} == before
    return path


def test_glb_carries_hair_cards(hairy, tmp_path, ict_hair):
    bpy, head = hairy
    path = _export(bpy, tmp_path, "GLB")
    gltf = _gltf(path)
    nodes = {n["name"]: n for n in gltf["nodes"]}
    cards = {name: n for name, n in nodes.items() if name.endswith("_cards")}
    assert set(cards) == {"hairy_hair_scalp_cards", "hairy_hair_beard_cards"}
    guides = ict_hair[0]
    for name, node in cards.items():
        assert "skin" in node  # skinned to the rig like the head
        mesh = gltf["meshes"][node["mesh"]]
        primitive = mesh["primitives"][0]
        assert "TEXCOORD_0" in primitive["attributes"] and "JOINTS_0" in primitive["attributes"]
        material = gltf["materials"][primitive["material"]]
        assert material["alphaMode"] == "BLEND" and material["doubleSided"] is True
        assert "baseColorTexture" in material["pbrMetallicRoughness"]
        group = 0 if "scalp" in name else 1
        points = np.diff(guides["curve_offsets"])[guides["group"] == group].sum()
        assert gltf["accessors"][primitive["attributes"]["POSITION"]]["count"] == 2 * points
    assert any(image.get("mimeType") == "image/png" for image in gltf["images"])

    # Blender's own importer reads the cards back: a mesh with UVs and a material whose alpha comes from the image.
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    card = next(o for o in bpy.data.objects if o.name.startswith("hairy_hair_scalp_cards"))
    assert card.type == "MESH" and len(card.data.uv_layers) == 1 and len(card.data.polygons) > 100
    uv = np.empty(len(card.data.loops) * 2, np.float32)
    card.data.uv_layers[0].data.foreach_get("uv", uv)
    assert uv.min() >= -1e-6 and uv.max() <= 1 + 1e-6 and np.ptp(uv.reshape(-1, 2), axis=0).min() > 0.9
    bsdf = next(n for n in card.data.materials[0].node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Alpha"].is_linked and bsdf.inputs["Alpha"].links[0].from_node.type == "TEX_IMAGE"
    assert any(m.type == "ARMATURE" for m in card.modifiers) or card.parent is not None


def test_glb_without_cards(hairy, tmp_path):
    bpy, head = hairy
    gltf = _gltf(_export(bpy, tmp_path, "GLB", hair_cards=False))
    assert not [n["name"] for n in gltf["nodes"] if n["name"].endswith("_cards")]


def test_cards_follow_the_rig(hairy, tmp_path):
    """The beard cards carry the jaw's weights, the scalp cards the head's (read back from the FBX)."""
    bpy, head = hairy
    path = _export(bpy, tmp_path, "FBX")
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path))
    cards = {o.name: o for o in bpy.data.objects if o.name.endswith("_cards")}
    assert set(cards) == {"hairy_hair_scalp_cards", "hairy_hair_beard_cards"}
    for name, card in cards.items():
        assert card.type == "MESH" and len(card.data.uv_layers) >= 1
        assert any(m.type == "ARMATURE" for m in card.modifiers)
        material = card.data.materials[0]
        assert any(n.type == "TEX_IMAGE" and n.image is not None for n in material.node_tree.nodes)
    groups = lambda obj: {g.name for g in obj.vertex_groups}  # noqa: E731
    assert "jaw" in groups(cards["hairy_hair_beard_cards"]) and "head" in groups(cards["hairy_hair_scalp_cards"])
    scalp = cards["hairy_hair_scalp_cards"]
    head_index = scalp.vertex_groups["head"].index
    weights = [next((g.weight for g in v.groups if g.group == head_index), 0.0) for v in scalp.data.vertices]
    assert np.mean(np.array(weights) > 0.9) > 0.9


def test_hidden_hair_is_not_exported(hairy, tmp_path):
    bpy, head = hairy
    bpy.context.scene.invertavatar.import_hair = False
    gltf = _gltf(_export(bpy, tmp_path, "GLB"))
    assert not [n["name"] for n in gltf["nodes"] if n["name"].endswith("_cards")]
    bpy.context.scene.invertavatar.import_hair = True
