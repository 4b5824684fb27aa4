"""The bundle's hair in Blender: Curves objects on the head surface, Blender's hair node groups, the rig, shading."""

import numpy as np
import pytest

import addon_env
from blender_addon.core.axes import points_to_blender

DENSITY = 2.0  # strands per cm²: enough children to check, few enough to stay fast


@pytest.fixture()
def hairy(clean_scene, ict_hair_bundle_dir):
    bpy = clean_scene
    bpy.context.scene.invertavatar.hair_density = DENSITY
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json")) == {"FINISHED"}
    head = bpy.context.view_layer.objects.active
    hair = {o["invertavatar_hair_group"]: o for o in head.children if o.type == "CURVES"}
    yield bpy, head, head.parent, hair
    bpy.context.scene.invertavatar.hair_density = 0.0


def _evaluated_points(bpy, obj):
    bpy.context.view_layer.update()
    curves = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    points = np.empty(len(curves.points) * 3, np.float32)
    curves.attributes["position"].data.foreach_get("vector", points)
    return points.reshape(-1, 3)


def test_hair_curves_sit_on_the_head(hairy, ict_hair):
    bpy, head, rig, hair = hairy
    guides, _ = ict_hair
    assert set(hair) == {"scalp", "beard"}
    for index, (group, obj) in enumerate(sorted(hair.items(), key=lambda kv: kv[0] != "scalp")):
        data = obj.data
        curves = np.flatnonzero(guides["group"] == index)
        sizes = np.diff(guides["curve_offsets"])[curves]
        assert len(data.curves) == len(curves) and len(data.points) == sizes.sum()
        # The guides themselves, in Blender axes, root first.
        points = np.empty(len(data.points) * 3, np.float32)
        data.attributes["position"].data.foreach_get("vector", points)
        index_of = np.concatenate([np.arange(guides["curve_offsets"][c], guides["curve_offsets"][c + 1]) for c in curves])
        np.testing.assert_allclose(points.reshape(-1, 3), points_to_blender(guides["points"][index_of]), atol=1e-7)
        radius = np.empty(len(data.points), np.float32)
        data.attributes["radius"].data.foreach_get("value", radius)
        np.testing.assert_allclose(radius, guides["radius"][index_of], rtol=1e-6)
        # Attached to the head as Empty Hair attaches: surface, its UV map, the roots' UVs, parented to it.
        assert data.surface == head and data.surface_uv_map == "UVMap" and obj.parent == head
        uv = np.empty(len(curves) * 2, np.float32)
        data.attributes["surface_uv_coordinate"].data.foreach_get("vector", uv)
        np.testing.assert_allclose(uv.reshape(-1, 2), guides["root_uv"][curves], atol=1e-7)
        assert obj.invertavatar.role == "HAIR" and obj.matrix_world == head.matrix_world
        # Blender's own procedural hair groups, then the surface deformation last.
        stack = [(m.type, m.node_group.name) for m in obj.modifiers]
        assert [name for _, name in stack] == ["Interpolate Hair Curves", "Clump Hair Curves", "Frizz Hair Curves",
                                               "Surface Deform"]
        assert {kind for kind, _ in stack} == {"NODES"}
        assert any(n.bl_idname == "GeometryNodeDeformCurvesOnSurface" for n in obj.modifiers[-1].node_group.nodes)


def test_interpolation_densifies_within_the_hair_region(hairy, ict_mesh_arrays, ict_hair):
    bpy, head, rig, hair = hairy
    scalp = hair["scalp"]
    evaluated = scalp.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    # 2 strands per cm² over the scalp region (a few hundred cm²) is many more curves than the 160 guides.
    many = len(evaluated.curves)
    assert 400 < many < 3000
    # Children grow only where the density mask is: their roots are near the scalp guides' roots, not on the face.
    points = _evaluated_points(bpy, scalp)
    sizes = np.empty(len(evaluated.curves), np.int32)
    evaluated.curves.foreach_get("points_length", sizes)
    roots = points[np.concatenate([[0], np.cumsum(sizes)[:-1]])]
    guide_roots = np.array([scalp.data.curves[i].points[0].position for i in range(len(scalp.data.curves))])
    nearest = np.min(np.linalg.norm(roots[:, None] - guide_roots[None], axis=2), axis=1)
    assert np.percentile(nearest, 95) < 0.03
    scalp_skin = points_to_blender(ict_mesh_arrays["vertices"][ict_hair[0]["scalp_vertices"]])
    to_scalp = np.min(np.linalg.norm(roots[:, None] - scalp_skin[None], axis=2), axis=1)
    # Every child grows on the scalp region or a polygon at its edge (ICT's back of head has 2 cm polygons) ...
    assert to_scalp.max() < 0.02
    front = roots[:, 1] < -0.06
    assert front.any() and roots[front, 2].min() > 0.06  # ... and none on the face below the hairline
    # Changing the density setting re-grows the existing hair.
    bpy.context.scene.invertavatar.hair_density = 0.5
    fewer = len(scalp.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.curves)
    assert fewer < many / 2


def test_hair_follows_the_head_bone_and_the_jaw(hairy):
    bpy, head, rig, hair = hairy
    scalp_rest, beard_rest = _evaluated_points(bpy, hair["scalp"]), _evaluated_points(bpy, hair["beard"])
    # Nodding the head bone moves every strand with it, rigidly about the bone.
    rig.pose.bones["head"].rotation_quaternion = (np.cos(0.15), np.sin(0.15), 0.0, 0.0)
    nodded = _evaluated_points(bpy, hair["scalp"])
    moved = np.linalg.norm(nodded - scalp_rest, axis=1)
    assert np.median(moved) > 0.01
    pivot = np.array(rig.data.bones["head"].head_local)
    np.testing.assert_allclose(np.linalg.norm(nodded - pivot, axis=1), np.linalg.norm(scalp_rest - pivot, axis=1),
                               atol=2e-3)
    rig.pose.bones["head"].rotation_quaternion = (1, 0, 0, 0)
    # Opening the jaw moves the beard and leaves the scalp hair where it was.
    rig.pose.bones["jaw"].rotation_quaternion = (np.cos(0.12), np.sin(0.12), 0.0, 0.0)
    assert np.median(np.linalg.norm(_evaluated_points(bpy, hair["beard"]) - beard_rest, axis=1)) > 0.003
    assert np.abs(_evaluated_points(bpy, hair["scalp"]) - scalp_rest).max() < 1e-5
    rig.pose.bones["jaw"].rotation_quaternion = (1, 0, 0, 0)


def test_hair_material_has_the_bundle_parameters(hairy, ict_hair):
    bpy, head, rig, hair = hairy
    expected = ict_hair[1]["groups"]
    for group, obj in hair.items():
        material = obj.data.materials[0]
        bsdf = material.node_tree.nodes["Hair BSDF"]
        assert bsdf.bl_idname == "ShaderNodeBsdfHairPrincipled" and bsdf.parametrization == "MELANIN"
        values = expected[group]
        for socket, key in (("Roughness", "roughness"), ("Radial Roughness", "radial_roughness"), ("Coat", "coat"),
                            ("IOR", "ior"), ("Random Color", "random_color"), ("Random Roughness", "random_roughness")):
            assert bsdf.inputs[socket].default_value == pytest.approx(values[key]), socket
        assert tuple(bsdf.inputs["Tint"].default_value)[:3] == pytest.approx(values["tint"])
        melanin = bsdf.inputs["Melanin"]
        if values["tip"] is None:
            assert not melanin.is_linked and melanin.default_value == pytest.approx(values["melanin"])
        else:
            # Root → tip along the strand: Curves Info's Intercept mixes root and tip melanin.
            mix = melanin.links[0].from_node
            assert mix.inputs["A"].default_value == pytest.approx(values["melanin"])
            assert mix.inputs["B"].default_value == pytest.approx(values["tip"]["melanin"])
            assert mix.inputs["Factor"].links[0].from_socket.name == "Intercept"
            redness = bsdf.inputs["Melanin Redness"].links[0].from_node
            assert redness.inputs["B"].default_value == pytest.approx(values["tip"]["melanin_redness"])


def test_hair_toggle(clean_scene, ict_hair_bundle_dir):
    bpy = clean_scene
    props = bpy.context.scene.invertavatar
    props.hair_density = DENSITY
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json")) == {"FINISHED"}
    hair = [o for o in bpy.data.objects if o.type == "CURVES"]
    assert len(hair) == 2 and not any(o.hide_viewport or o.hide_render for o in hair)
    props.import_hair = False  # hides the existing avatar's hair
    assert all(o.hide_viewport and o.hide_render for o in hair)
    before = len(bpy.data.objects)
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json")) == {"FINISHED"}
    assert len(bpy.data.objects) == before + 2 and len([o for o in bpy.data.objects if o.type == "CURVES"]) == 2
    props.import_hair = True
    assert not any(o.hide_viewport for o in hair)
    props.hair_density = 0.0


def test_failure_after_the_hair_leaves_nothing(clean_scene, ict_hair_bundle_dir, monkeypatch):
    bpy = clean_scene
    bpy.context.scene.invertavatar.hair_density = DENSITY
    avatar_mod = addon_env.addon_module("scene.avatar")
    real = avatar_mod.build_hair

    def broken(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("injected failure after the hair")

    monkeypatch.setattr(avatar_mod, "build_hair", broken)
    stores = ("objects", "meshes", "armatures", "materials", "images", "collections", "hair_curves", "node_groups")
    before = {s: len(getattr(bpy.data, s)) for s in stores}
    with pytest.raises(RuntimeError, match="injected failure"):
        bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json"))
    assert {s: len(getattr(bpy.data, s)) for s in stores} == before
    bpy.context.scene.invertavatar.hair_density = 0.0


def test_without_the_hair_assets_the_guides_come_alone(clean_scene, ict_hair_bundle_dir, monkeypatch):
    bpy = clean_scene
    hair_mod = addon_env.addon_module("scene.hair")
    monkeypatch.setattr(hair_mod, "hair_asset_path", lambda: None)
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json")) == {"FINISHED"}
    hair = [o for o in bpy.data.objects if o.type == "CURVES"]
    assert len(hair) == 2 and all([m.name for m in o.modifiers] == ["Surface Deform"] for o in hair)
    assert "guide curves only" in bpy.context.window_manager.invertavatar.status


def test_second_import_reuses_the_node_groups(clean_scene, ict_hair_bundle_dir):
    bpy = clean_scene
    bpy.context.scene.invertavatar.hair_density = DENSITY
    for _ in range(2):
        bpy.ops.invertavatar.import_bundle(filepath=str(ict_hair_bundle_dir / "manifest.json"))
    assert not [g.name for g in bpy.data.node_groups if g.name.startswith("Interpolate Hair Curves.")]
    bpy.context.scene.invertavatar.hair_density = 0.0


def test_bundle_without_hair_imports_as_before(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    assert bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json")) == {"FINISHED"}
    assert sorted(o.type for o in bpy.data.objects) == ["ARMATURE", "MESH"] and len(bpy.data.hair_curves) == 0
    assert bpy.context.window_manager.invertavatar.status == f"Imported {bpy.context.view_layer.objects.active.name}"
