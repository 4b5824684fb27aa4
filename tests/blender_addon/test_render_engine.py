"""The neural preview engine asks the backend for the current frame's expression and shows the PNG."""

import numpy as np
import pytest

import addon_env
from blender_addon.core.arkit import ARKIT_NAMES
from stub_backend import StubBackend


def _setup(bpy, stub, ict_bundle_dir):
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    prefs.backend_mode, prefs.remote_url, prefs.token = "REMOTE", stub.url, "secret"
    bpy.context.scene.invertavatar.animate_on_import = True
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    head = bpy.context.view_layer.objects.active
    head.invertavatar.avatar_id = "av-42"  # as if it came from that backend
    scene = bpy.context.scene
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))  # F12 needs a scene camera
    scene.collection.objects.link(camera)
    scene.camera = camera
    bpy.context.view_layer.objects.active = head
    scene.render.engine = "INVERTAVATAR_PREVIEW"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
    scene.view_settings.view_transform = "Standard"  # exact pixels, no filmic curve
    return prefs, head


def test_preview_render_uses_the_frame_expression(clean_scene, ict_bundle_dir, tmp_path):
    import json

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
    expected = tracks["frames"][5]["arkit"]  # frame 6 = source frame 5
    assert request["width"] == 64 and request["height"] == 48
    np.testing.assert_allclose([request["arkit"][n] for n in ARKIT_NAMES], expected, atol=1e-5)
    np.testing.assert_allclose(np.abs(np.dot(request["head_rotation"], tracks["frames"][5]["head_rotation"])), 1.0,
                               atol=1e-5)
    image = bpy.data.images.load(str(tmp_path / "preview.png"))
    pixels = np.array(image.pixels[:]).reshape(48, 64, 4)  # Blender stores the bottom row first
    np.testing.assert_allclose(pixels[24:, :, :3].mean(axis=(0, 1)), np.array([255, 128, 0]) / 255, atol=2 / 255)
    np.testing.assert_allclose(pixels[:24, :, :3].mean(axis=(0, 1)), np.array([0, 64, 255]) / 255, atol=2 / 255)


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
