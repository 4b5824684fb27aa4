"""The render engine asks the backend for the frame's expression, pose and gaze, with the scene camera and the
chosen renderer; the scene camera round-trips; the material switches between the photo texture and the neural bake;
the bake button runs a backend job."""

import hashlib
import json
import math
import shutil

import numpy as np
import pytest

import addon_env
from blender_addon.core.arkit import ARKIT_NAMES
from stub_backend import StubBackend


def _front_camera(bpy, scene, head, distance=0.9):
    """A scene camera in front of the face (Blender: the face looks down −Y)."""
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    verts = head.data.vertices
    corners = np.array([head.matrix_world @ verts[i].co for i in range(0, len(verts), 50)])
    centre = (corners.min(0) + corners.max(0)) / 2
    camera.location = (centre[0], centre[1] - distance, centre[2])
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    return camera


def _setup(bpy, stub, bundle_dir):
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    prefs.backend_mode, prefs.remote_url, prefs.token = "REMOTE", stub.url, "secret"
    bpy.context.scene.invertavatar.animate_on_import = True
    bpy.ops.invertavatar.import_bundle(filepath=str(bundle_dir / "manifest.json"))
    head = bpy.context.view_layer.objects.active
    head.invertavatar.avatar_id = "av-42"  # as if it came from that backend
    scene = bpy.context.scene
    _front_camera(bpy, scene, head)
    bpy.context.view_layer.objects.active = head
    scene.render.engine = "INVERTAVATAR_PREVIEW"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    scene.view_settings.view_transform = "Standard"  # exact pixels, no filmic curve
    return prefs, head


def _with_neural_bake(source, target):
    """A copy of a bundle made in neural mode, with a flat orange ``neural_baked.png``."""
    from PIL import Image

    shutil.copytree(source, target)
    Image.fromarray(np.full((64, 64, 3), (230, 120, 20), np.uint8)).save(target / "textures" / "neural_baked.png")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["mode"] = "neural"
    manifest["files"]["textures/neural_baked.png"] = hashlib.sha256(
        (target / "textures" / "neural_baked.png").read_bytes()).hexdigest()
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_preview_render_uses_the_frame_expression(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    with StubBackend(ict_bundle_dir) as stub:
        prefs, head = _setup(bpy, stub, ict_bundle_dir)
        scene = bpy.context.scene
        scene.frame_set(6)
        scene.render.filepath = str(tmp_path / "preview.png")
        try:
            bpy.ops.render.render(write_still=True)
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        request = stub.render_requests[-1]
    tracks = json.loads((ict_bundle_dir / "tracks.json").read_text())
    expected = tracks["frames"][5]  # frame 6 = source frame 5
    assert request["width"] == 64 and request["height"] == 48 and "renderer" not in request  # AUTO: the default
    np.testing.assert_allclose([request["arkit"][n] for n in ARKIT_NAMES], expected["arkit"], atol=1e-5)
    np.testing.assert_allclose(np.abs(np.dot(request["head_rotation"], expected["head_rotation"])), 1.0, atol=1e-5)
    np.testing.assert_allclose(request["head_translation"], expected["head_translation"], atol=1e-5)
    for eye in ("eye_L", "eye_R"):
        np.testing.assert_allclose(request["gaze"][eye], expected["gaze"][eye], atol=1e-4)
    assert set(request["camera"]) == {"K", "R", "t"}
    image = bpy.data.images.load(str(tmp_path / "preview.png"))
    pixels = np.array(image.pixels[:]).reshape(48, 64, 4)  # Blender stores the bottom row first
    np.testing.assert_allclose(pixels[24:, :, :3].mean(axis=(0, 1)), np.array([255, 128, 0]) / 255, atol=2 / 255)
    np.testing.assert_allclose(pixels[:24, :, :3].mean(axis=(0, 1)), np.array([0, 64, 255]) / 255, atol=2 / 255)


@pytest.mark.parametrize("setting, sent", [("NEURAL", "neural"), ("ALBEDO", "albedo")])
def test_the_renderer_setting_is_sent(clean_scene, ict_bundle_dir, setting, sent):
    bpy = clean_scene
    with StubBackend(ict_bundle_dir) as stub:
        prefs, _ = _setup(bpy, stub, ict_bundle_dir)
        bpy.context.scene.invertavatar.renderer = setting
        try:
            bpy.ops.render.render()
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        assert stub.render_requests[-1]["renderer"] == sent


def test_preview_without_backend_reports_the_error(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    with StubBackend(ict_bundle_dir, token="other") as stub:
        prefs, _ = _setup(bpy, stub, ict_bundle_dir)
        try:
            with pytest.raises(RuntimeError, match="refused the access token"):
                bpy.ops.render.render()
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        assert stub.render_requests == []


def test_the_scene_camera_round_trips(clean_scene, ict_bundle_dir):
    """A render from the scene camera (lens shift, non-square, turned, avatar moved) lines up with the mesh that
    Blender itself projects through that camera."""
    import torch
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from invertavatar.io.bundle import read_bundle
    from invertavatar.render import Camera
    from invertavatar.renderers import render

    bpy = clean_scene
    width, height = 96, 72
    with StubBackend(ict_bundle_dir) as stub:
        prefs, head = _setup(bpy, stub, ict_bundle_dir)
        scene = bpy.context.scene
        scene.render.resolution_x, scene.render.resolution_y = width, height
        head.parent.location = (0.05, 0.1, -0.02)  # the avatar moved in the scene
        head.parent.rotation_euler = (0.0, 0.0, 0.25)
        bpy.context.view_layer.update()
        camera = _front_camera(bpy, scene, head, distance=1.1)
        camera.rotation_euler = (math.pi / 2 + 0.03, 0.0, 0.06)
        camera.data.lens, camera.data.shift_x, camera.data.shift_y = 70.0, 0.04, -0.03
        bpy.context.view_layer.update()
        try:
            bpy.ops.render.render()
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        request = stub.render_requests[-1]
        coords = np.empty(len(head.data.vertices) * 3, np.float32)
        head.data.vertices.foreach_get("co", coords)
        world = np.array(head.matrix_world) @ np.c_[coords.reshape(-1, 3), np.ones(len(coords) // 3)].T
        blender_px = []
        for i in range(world.shape[1]):
            ndc = world_to_camera_view(scene, camera, Vector(world[:3, i]))
            blender_px.append((ndc.x * width, (1.0 - ndc.y) * height))
    blender_px = np.array(blender_px)
    backend = read_bundle(ict_bundle_dir)
    cam = Camera(*(torch.tensor(request["camera"][k], dtype=torch.float32) for k in ("K", "R", "t")), width, height)
    projected = cam.project(torch.from_numpy(backend.mesh["vertices"])[None])[0, :, :2].numpy()
    np.testing.assert_allclose(projected, blender_px, atol=0.05)  # the same camera, to a twentieth of a pixel
    # The backend's picture through that camera covers where Blender sees the head: silhouette extremes within 1 px.
    image = render(backend, "albedo", camera=cam, background=(0, 255, 0)).image.astype(int)
    covered = ~((image[..., 1] > 200) & (image[..., 0] < 60))
    rows, cols = np.nonzero(covered)
    left, right, top = blender_px[:, 0].min(), blender_px[:, 0].max(), blender_px[:, 1].min()
    assert 1 < left and right < width - 1 and 1 < top  # those edges are inside the frame
    assert abs(cols.min() - left) < 1.0 and abs(cols.max() + 1 - right) < 1.0 and abs(rows.min() - top) < 1.0


def _base_colour_image(material):
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    return bsdf.inputs["Base Color"].links[0].from_node.name


def _glb_images(path):
    import struct

    raw = path.read_bytes()
    gltf = json.loads(raw[20:20 + struct.unpack("<I", raw[12:16])[0]])
    return [image.get("name", "") for image in gltf.get("images", [])]


def test_material_switches_between_photo_texture_and_neural_bake(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    bundle = _with_neural_bake(ict_bundle_dir, tmp_path / "neural.avatar")
    bpy.ops.invertavatar.import_bundle(filepath=str(bundle / "manifest.json"))
    head = bpy.context.view_layer.objects.active
    material = head.data.materials[0]
    assert head.invertavatar.texture_source == "NEURAL" and _base_colour_image(material) == "Neural bake"
    head.invertavatar.texture_source = "PHOTO"
    assert _base_colour_image(material) == "Albedo"
    assert bpy.ops.invertavatar.export(filepath=str(tmp_path / "photo.glb"), format="GLB") == {"FINISHED"}
    photo = _glb_images(tmp_path / "photo.glb")
    head.invertavatar.texture_source = "NEURAL"
    assert bpy.ops.invertavatar.export(filepath=str(tmp_path / "neural.glb"), format="GLB") == {"FINISHED"}
    neural = _glb_images(tmp_path / "neural.glb")
    assert any("albedo" in n for n in photo) and not any("neural" in n for n in photo)
    assert any("neural" in n for n in neural) and not any("albedo" in n for n in neural)
    # A fit-only avatar has no neural bake: asking for it leaves the photo texture.
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    plain = bpy.context.view_layer.objects.active
    plain.invertavatar.texture_source = "NEURAL"
    assert _base_colour_image(plain.data.materials[0]) == "Albedo"


def test_bake_button_runs_the_backend_bake_and_shows_it(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    bundle = _with_neural_bake(ict_bundle_dir, tmp_path / "neural.avatar")
    with StubBackend(bundle) as stub:
        prefs, head = _setup(bpy, stub, bundle)
        head.invertavatar.mode = "neural"
        head.invertavatar.texture_source = "PHOTO"
        try:
            assert bpy.ops.invertavatar.bake_neural() == {"FINISHED"}, \
                bpy.context.window_manager.invertavatar.status
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        assert stub.bake_requests == ["av-42"]
    material = head.data.materials[0]
    assert head.invertavatar.texture_source == "NEURAL" and _base_colour_image(material) == "Neural bake"
    image = material.node_tree.nodes["Neural bake"].image
    assert tuple(image.size) == (64, 64)


def test_render_animation_on_backend_sends_the_frame_range(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    with StubBackend(ict_bundle_dir) as stub:
        prefs, head = _setup(bpy, stub, ict_bundle_dir)
        scene = bpy.context.scene
        scene.frame_start, scene.frame_end = 3, 7
        scene.invertavatar.renderer = "ALBEDO"
        scene.render.filepath = str(tmp_path / "out" / "shot")
        try:
            assert bpy.ops.invertavatar.render_animation_backend() == {"FINISHED"}, \
                bpy.context.window_manager.invertavatar.status
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        request = stub.animate_requests[-1]
    tracks = json.loads((ict_bundle_dir / "tracks.json").read_text())
    assert [f["index"] for f in request["tracks"]["frames"]] == [3, 4, 5, 6, 7]
    assert request["renderer"] == "albedo" and request["size"] == 48
    np.testing.assert_allclose(request["tracks"]["frames"][0]["arkit"], tracks["frames"][2]["arkit"], atol=1e-5)
    assert (tmp_path / "out" / "shot.mp4").read_bytes().startswith(b"\x00\x00\x00\x18ftyp")


def test_viewport_helpers_decode_pictures_and_slow_down(clean_scene):
    """What ``view_draw`` uses besides the GPU (headless Blender has no GPU context to draw into)."""
    from stub_backend import two_tone_png

    engine = addon_env.addon_module("render_engine")
    pixels, width, height = engine._png_pixels(two_tone_png(8, 6, (255, 0, 0), (0, 0, 255)))
    rgba = pixels.reshape(height, width, 4)
    assert (width, height) == (8, 6)
    np.testing.assert_allclose(rgba[-1, 0], [1, 0, 0, 1], atol=1e-3)  # Blender's rows start at the bottom
    np.testing.assert_allclose(rgba[0, 0], [0, 0, 1, 1], atol=1e-3)

    from types import SimpleNamespace

    class Queue:
        def __init__(self):
            self.result = None

        def latest(self):
            return self.result

    view, queue = SimpleNamespace(), Queue()
    scale = engine.INVERTAVATAR_RenderEngine._viewport_scale
    steps = []
    for serial, seconds in enumerate((None, 0.2, 0.8, 0.8, 0.2, 3.0, 0.05, 0.05, 0.05)):
        queue.result = None if seconds is None else SimpleNamespace(serial=serial, seconds=seconds)
        steps.append(scale(view, queue))
        assert scale(view, queue) == steps[-1]  # the same picture decides once
    # slow → half; a 0.2 s half-size picture keeps half (no flip-flop); very slow → quarter; fast ones step back up
    assert steps == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.5, 1.0, 1.0]
