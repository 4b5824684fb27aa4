"""The skin material: subsurface scattering, roughness / specular / detail-normal maps, and what the exporters keep.

A bundle with the optional material textures is imported through the add-on's operator; the GLB's JSON must carry
the normal texture, a metallicRoughness texture, KHR_materials_specular and KHR_materials_ior, and the FBX
re-imported must still have its normal map and roughness texture.
"""

import json
import shutil
import struct

import numpy as np
import pytest
from PIL import Image

import ict_bundle


@pytest.fixture()
def material_bundle(ict_bundle_dir, tmp_path):
    folder = tmp_path / "maps.avatar"
    shutil.copytree(ict_bundle_dir, folder)
    size = 256
    ramp = np.linspace(60, 160, size, dtype=np.float32)
    Image.fromarray(np.broadcast_to(ramp[None, :], (size, size)).astype(np.uint8), "L").save(
        folder / "textures" / "roughness.png")
    Image.fromarray(np.broadcast_to(ramp[:, None], (size, size)).astype(np.uint8), "L").save(
        folder / "textures" / "specular.png")
    rng = np.random.default_rng(3)
    tilt = rng.normal(0.0, 0.08, (size, size, 2))
    normal = np.concatenate([tilt, np.ones((size, size, 1))], -1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    Image.fromarray((normal * 127.5 + 127.5).astype(np.uint8), "RGB").save(folder / "textures" / "normal.png")
    ict_bundle.refresh_checksums(folder)
    return folder


def _skin(bpy):
    head = next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys is not None)
    return head, next(m for m in head.data.materials if m.name.endswith("_skin"))


def _linked_image(material, socket: str):
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    links = bsdf.inputs[socket].links
    return links[0].from_node if links else None


def test_the_skin_material_is_built_for_skin(clean_scene, material_bundle):
    bpy = clean_scene
    assert bpy.ops.invertavatar.import_bundle(filepath=str(material_bundle / "manifest.json")) == {"FINISHED"}
    _, material = _skin(bpy)
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.subsurface_method == "RANDOM_WALK_SKIN"
    assert bsdf.inputs["Subsurface Weight"].default_value == pytest.approx(1.0)
    radius = np.array(bsdf.inputs["Subsurface Radius"].default_value)
    assert radius[0] > radius[1] > radius[2] > 0  # red light travels furthest in skin
    assert 0.001 < bsdf.inputs["Subsurface Scale"].default_value < 0.01  # millimetres, in a scene in metres
    assert bsdf.inputs["IOR"].default_value == pytest.approx(1.4)
    for socket, stem in (("Roughness", "roughness"), ("Specular IOR Level", "specular"), ("Base Color", "albedo")):
        node = _linked_image(material, socket)
        assert node is not None and node.type == "TEX_IMAGE" and node.image.name.endswith(stem), socket
        if stem != "albedo":
            assert node.image.colorspace_settings.name == "Non-Color"
    normal_map = _linked_image(material, "Normal")
    assert normal_map is not None and normal_map.type == "NORMAL_MAP" and normal_map.space == "TANGENT"
    assert normal_map.inputs["Color"].links[0].from_node.image.name.endswith("normal")


def test_a_bundle_without_maps_still_gets_skin_shading(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json")) == {"FINISHED"}
    _, material = _skin(bpy)
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.subsurface_method == "RANDOM_WALK_SKIN"
    assert _linked_image(material, "Roughness") is None and _linked_image(material, "Normal") is None


def _glb_json(path) -> dict:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    assert data[16:20] == b"JSON"
    return json.loads(data[20:20 + length])


def test_the_exported_glb_carries_the_maps(clean_scene, material_bundle, tmp_path):
    bpy = clean_scene
    assert bpy.ops.invertavatar.import_bundle(filepath=str(material_bundle / "manifest.json")) == {"FINISHED"}
    assert bpy.ops.invertavatar.export(filepath=str(tmp_path / "avatar.glb"), format="GLB") == {"FINISHED"}
    gltf = _glb_json(tmp_path / "avatar.glb")
    skin = next(m for m in gltf["materials"] if m["name"].endswith("_skin"))
    print(json.dumps(skin, indent=1), gltf.get("extensionsUsed"))
    pbr = skin["pbrMetallicRoughness"]
    assert "baseColorTexture" in pbr and "metallicRoughnessTexture" in pbr
    assert "normalTexture" in skin
    extensions = skin.get("extensions", {})
    assert "KHR_materials_specular" in extensions and "specularTexture" in extensions["KHR_materials_specular"]
    assert extensions.get("KHR_materials_ior", {}).get("ior") == pytest.approx(1.4)
    textures = {pbr["baseColorTexture"]["index"], pbr["metallicRoughnessTexture"]["index"],
                skin["normalTexture"]["index"]}
    assert len(textures) == 3  # three different images, not one reused


def test_the_exported_fbx_keeps_normal_and_roughness(clean_scene, material_bundle, tmp_path):
    bpy = clean_scene
    assert bpy.ops.invertavatar.import_bundle(filepath=str(material_bundle / "manifest.json")) == {"FINISHED"}
    assert bpy.ops.invertavatar.export(filepath=str(tmp_path / "avatar.fbx"), format="FBX") == {"FINISHED"}
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(tmp_path / "avatar.fbx"))
    _, material = _skin(bpy)
    normal_map = _linked_image(material, "Normal")
    assert normal_map is not None and normal_map.type == "NORMAL_MAP"
    assert _linked_image(material, "Roughness") is not None
    assert _linked_image(material, "Base Color") is not None
