"""Importing a bundle: mesh in Blender axes, Basis + 52 ARKit keys, rig + weights, texture, clean failure."""

import numpy as np
import pytest

import addon_env
from blender_addon.core.arkit import ARKIT_NAMES
from blender_addon.core.axes import points_to_blender


def _import(bpy, bundle_dir):
    assert bpy.ops.invertavatar.import_bundle(filepath=str(bundle_dir / "manifest.json")) == {"FINISHED"}
    head = bpy.context.view_layer.objects.active
    return head, head.parent


def _evaluated_coords(bpy, obj):
    bpy.context.view_layer.update()
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    coords = np.empty(len(evaluated.data.vertices) * 3, np.float32)
    evaluated.data.vertices.foreach_get("co", coords)
    return coords.reshape(-1, 3)


def test_import_builds_the_whole_avatar(clean_scene, ict_bundle_dir, ict_mesh_arrays):
    bpy = clean_scene
    bpy.context.scene.invertavatar.animate_on_import = False
    head, rig = _import(bpy, ict_bundle_dir)
    assert head.type == "MESH" and rig.type == "ARMATURE"
    assert head.invertavatar.role == "HEAD" and rig.invertavatar.role == "RIG"
    assert head.invertavatar.coverage == pytest.approx(0.41) and head.invertavatar.head_model == "ict-face-light"
    mesh = head.data
    assert len(mesh.vertices) == 26719 and len(mesh.polygons) == 26384
    coords = np.empty(26719 * 3, np.float32)
    mesh.vertices.foreach_get("co", coords)
    np.testing.assert_allclose(coords.reshape(-1, 3), points_to_blender(ict_mesh_arrays["vertices"]), atol=1e-6)
    # Face towards −Y: the nose tip (largest backend z) has the most negative Blender y.
    assert coords.reshape(-1, 3)[:, 1].argmin() == ict_mesh_arrays["vertices"][:, 2].argmax()
    names = [k.name for k in mesh.shape_keys.key_blocks]
    assert names == ["Basis", *ARKIT_NAMES]
    # Without a clip the avatar starts neutral: every key at 0 and the evaluated mesh equals the basis.
    assert {k.value for k in mesh.shape_keys.key_blocks[1:]} == {0.0}
    np.testing.assert_allclose(_evaluated_coords(bpy, head), coords.reshape(-1, 3), atol=1e-6)
    assert list(head["invertavatar_missing_shapes"]) == ["tongueOut"]
    assert [b.name for b in rig.data.bones] == ["root", "neck", "head", "jaw", "eye_L", "eye_R"]
    assert rig.data.bones["jaw"].parent.name == "head" and rig.data.bones["head"].parent.name == "neck"
    modifier = head.modifiers["Armature"]
    assert modifier.type == "ARMATURE" and modifier.object == rig
    # Vertex weights equal the bundle's, on a sample of vertices.
    rng = np.random.default_rng(0)
    group_names = [g.name for g in head.vertex_groups]
    for v in rng.choice(26719, 300, replace=False):
        got = np.zeros(6, np.float32)
        for g in mesh.vertices[int(v)].groups:
            got[["root", "neck", "head", "jaw", "eye_L", "eye_R"].index(group_names[g.group])] = g.weight
        np.testing.assert_allclose(got, ict_mesh_arrays["vertex_weights"][v], atol=1e-6)
    # Texture: albedo wired to the BSDF, coverage available, both packed into the .blend.
    material = mesh.materials[0]
    nodes = material.node_tree.nodes
    albedo, coverage = nodes["Albedo"].image, nodes["Coverage"].image
    assert albedo.size[:] == (512, 512) and albedo.packed_file is not None and coverage.packed_file is not None
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Base Color"].links[0].from_node == nodes["Albedo"]
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers["UVMap"].data.foreach_get("uv", uv)
    assert 0.0 <= uv.min() and uv.max() <= 1.0
    # The eye overlay shells and the lash cards get a see-through material; everything else keeps the skin.
    overlay = mesh.materials[1]
    overlay_bsdf = next(n for n in overlay.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert overlay_bsdf.inputs["Alpha"].default_value == 0.0
    slots = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", slots)
    names = np.asarray(ict_mesh_arrays["material_names"])[ict_mesh_arrays["face_material"]]
    np.testing.assert_array_equal(slots == 1, np.isin(names, ["M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend",
                                                             "M_EyeLashes"]))


def test_jaw_open_and_eye_bones_deform_as_expected(clean_scene, ict_bundle_dir, ict_mesh_arrays):
    bpy = clean_scene
    head, rig = _import(bpy, ict_bundle_dir)
    scene = bpy.context.scene
    scene.frame_set(0)  # the clip's keys start at frame 1; frame 0 holds the first key's values
    head.data.shape_keys.animation_data.action = None
    rig.animation_data.action = None
    for block in head.data.shape_keys.key_blocks:
        block.value = 0.0
    for bone in rig.pose.bones:
        bone.rotation_quaternion = (1, 0, 0, 0)
        bone.location = (0, 0, 0)
    rest = _evaluated_coords(bpy, head)
    np.testing.assert_allclose(rest, points_to_blender(ict_mesh_arrays["vertices"]), atol=1e-5)

    jaw = ARKIT_NAMES.index("jawOpen")
    head.data.shape_keys.key_blocks["jawOpen"].value = 1.0
    opened = _evaluated_coords(bpy, head)
    expected = points_to_blender(ict_mesh_arrays["vertices"] + ict_mesh_arrays["expression_deltas"][jaw])
    np.testing.assert_allclose(opened, expected, atol=1e-5)
    assert np.abs(opened - rest).max() > 0.005  # the mouth really opens (millimetres, not noise)
    head.data.shape_keys.key_blocks["jawOpen"].value = 0.0

    weights = ict_mesh_arrays["vertex_weights"]
    eye_l = weights[:, 4] == 1.0
    centre = np.array(rig.data.bones["eye_L"].head_local)
    rig.pose.bones["eye_L"].rotation_quaternion = (np.cos(0.2), 0.0, 0.0, np.sin(0.2))  # about the bone's Z
    looked = _evaluated_coords(bpy, head)
    moved = np.linalg.norm(looked - rest, axis=1)
    assert moved[eye_l].max() > 0.002 and moved[~eye_l & (weights[:, 4] == 0)].max() < 1e-6
    np.testing.assert_allclose(np.linalg.norm(looked[eye_l] - centre, axis=1),
                               np.linalg.norm(rest[eye_l] - centre, axis=1), atol=1e-5)  # a rotation about the eye
    rig.pose.bones["eye_L"].rotation_quaternion = (1, 0, 0, 0)

    rig.pose.bones["jaw"].rotation_quaternion = (np.cos(0.1), np.sin(0.1), 0.0, 0.0)
    jawed = _evaluated_coords(bpy, head)
    chin = weights[:, 3] > 0.99
    assert np.linalg.norm(jawed[chin] - rest[chin], axis=1).min() > 1e-4
    assert np.abs(jawed[weights[:, 3] == 0] - rest[weights[:, 3] == 0]).max() < 1e-6


def test_importing_twice_gives_two_clean_avatars(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    first, _ = _import(bpy, ict_bundle_dir)
    second, _ = _import(bpy, ict_bundle_dir)
    assert first.name != second.name and first.data != second.data
    assert len(bpy.data.objects) == 4 and len(bpy.data.collections) == 2
    assert first.data.shape_keys != second.data.shape_keys
    assert [k.name for k in second.data.shape_keys.key_blocks][1:] == list(ARKIT_NAMES)


def test_failure_half_way_leaves_nothing(clean_scene, ict_bundle_dir, monkeypatch):
    bpy = clean_scene
    avatar_mod = addon_env.addon_module("scene.avatar")

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure while skinning")

    monkeypatch.setattr(avatar_mod, "add_skinning", broken)
    stores = ("objects", "meshes", "armatures", "materials", "images", "collections", "actions", "shape_keys")
    before = {s: len(getattr(bpy.data, s)) for s in stores}
    with pytest.raises(RuntimeError, match="injected failure"):
        bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    assert {s: len(getattr(bpy.data, s)) for s in stores} == before


def test_bad_bundle_shows_message_and_changes_nothing(clean_scene, tmp_path):
    bpy = clean_scene
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(RuntimeError, match="not describe an InvertAvatar bundle"):  # ERROR reports raise in bpy.ops
        bpy.ops.invertavatar.import_bundle(filepath=str(tmp_path / "manifest.json"))
    job = bpy.context.window_manager.invertavatar
    assert job.status_is_error and "does not describe an InvertAvatar bundle" in job.status
    assert len(bpy.data.objects) == 0


def test_import_while_another_object_is_in_edit_mode(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    mesh = bpy.data.meshes.new("cube")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    other = bpy.data.objects.new("cube", mesh)
    bpy.context.scene.collection.objects.link(other)
    bpy.context.view_layer.objects.active = other
    bpy.ops.object.mode_set(mode="EDIT")
    head, rig = _import(bpy, ict_bundle_dir)
    assert other.mode == "OBJECT" and rig.mode == "OBJECT" and len(rig.data.bones) == 6
