"""tracks.json → keyframes: values match the file at every frame; head pose and gaze; scene fps and range."""

import json

import numpy as np
import pytest

import ict_bundle
from blender_addon.core.arkit import ARKIT_NAMES
from blender_addon.core.axes import BACKEND_TO_BLENDER, gaze_to_quats, quat_to_matrix


def _avatar(bpy, bundle_dir):
    bpy.context.scene.invertavatar.animate_on_import = False
    bpy.ops.invertavatar.import_bundle(filepath=str(bundle_dir / "manifest.json"))
    head = bpy.context.view_layer.objects.active
    return head, head.parent


def _fcurves(addon_env, owner):
    return addon_env.addon_module("scene.actions").owner_fcurves(owner)


@pytest.mark.parametrize("fps, every", [(30.0, 1), (29.97, 2)])
def test_tracks_become_frame_exact_keys(clean_scene, ict_bundle_dir, tmp_path, fps, every):
    import addon_env

    bpy = clean_scene
    head, rig = _avatar(bpy, ict_bundle_dir)
    assert head.data.shape_keys.animation_data is None or head.data.shape_keys.animation_data.action is None
    tracks = ict_bundle.synthetic_tracks(40, fps=fps, every=every, seed=3)
    path = tmp_path / "tracks.json"
    path.write_text(json.dumps(tracks))
    assert bpy.ops.invertavatar.apply_tracks(filepath=str(path)) == {"FINISHED"}

    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == pytest.approx(fps)
    assert (scene.frame_start, scene.frame_end) == (1, 1 + 39 * every)
    key = head.data.shape_keys
    action = key.animation_data.action
    assert action["invertavatar_source_fps"] == pytest.approx(fps)
    curves = {fc.data_path: fc for fc in _fcurves(addon_env, key)}
    assert len(curves) == 52
    expected = np.array([f["arkit"] for f in tracks["frames"]], np.float32)
    frames = np.array([f["index"] for f in tracks["frames"]]) + 1
    for i, name in enumerate(ARKIT_NAMES):
        fcurve = curves[f'key_blocks["{name}"].value']
        co = np.empty(len(fcurve.keyframe_points) * 2, np.float32)
        fcurve.keyframe_points.foreach_get("co", co)
        np.testing.assert_array_equal(co[0::2], frames)
        np.testing.assert_allclose(co[1::2], expected[:, i], atol=1e-6)
    for row in (0, 7, 39):  # the evaluated scene agrees with the file
        scene.frame_set(int(frames[row]))
        got = [key.key_blocks[n].value for n in ARKIT_NAMES]
        np.testing.assert_allclose(got, expected[row], atol=1e-6)

    # Head pose and gaze: the posed bones rotate exactly as tracks.json says (converted to Blender axes); the
    # gaze is relative to the head, so the eye's rotation is measured in its parent's posed frame.
    row = 11
    scene.frame_set(int(frames[row]))
    frame = tracks["frames"][row]

    def delta(bone):
        rest = np.array(rig.data.bones[bone].matrix_local.to_3x3())
        return np.array(rig.pose.bones[bone].matrix.to_3x3()) @ rest.T

    for bone, quat in (("head", frame["head_rotation"]),
                       ("eye_L", gaze_to_quats(np.array(frame["gaze"]["eye_L"])))):
        parent = rig.data.bones[bone].parent.name
        relative = delta(parent).T @ delta(bone)
        expected_delta = BACKEND_TO_BLENDER @ quat_to_matrix(np.array(quat)) @ BACKEND_TO_BLENDER.T
        np.testing.assert_allclose(relative, expected_delta, atol=1e-5)
    head_offset = np.array(rig.pose.bones["head"].matrix.translation) - np.array(rig.data.bones["head"].head_local)
    np.testing.assert_allclose(head_offset, BACKEND_TO_BLENDER @ np.array(frame["head_translation"]), atol=1e-6)


def test_import_with_clip_keys_it_and_reimport_is_independent(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    bpy.context.scene.invertavatar.animate_on_import = True
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    first = bpy.context.view_layer.objects.active
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    second = bpy.context.view_layer.objects.active
    a1 = first.data.shape_keys.animation_data.action
    a2 = second.data.shape_keys.animation_data.action
    assert a1 is not None and a2 is not None and a1 != a2
    assert bpy.context.scene.frame_end == 24


def test_key_all_and_reset(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    head, _ = _avatar(bpy, ict_bundle_dir)
    blocks = head.data.shape_keys.key_blocks
    blocks["jawOpen"].value = 0.7
    bpy.context.scene.frame_set(5)
    assert bpy.ops.invertavatar.key_expressions() == {"FINISHED"}
    assert bpy.ops.invertavatar.reset_expressions() == {"FINISHED"}
    assert blocks["jawOpen"].value == 0.0
    bpy.context.scene.frame_set(5)
    assert blocks["jawOpen"].value == pytest.approx(0.7)
    import addon_env

    assert len(_fcurves(addon_env, head.data.shape_keys)) == 52
