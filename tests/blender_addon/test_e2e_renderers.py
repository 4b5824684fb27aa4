"""End to end, both renderers: a real backend app (in this process, on a free port) holds a neural avatar made with
tiny random networks; the add-on imports its bundle and renders F12 through the engine with the scene camera for
the albedo and the neural renderer. The albedo picture equals the backend's own render for that camera."""

import importlib.util
import json
import math
import socket
import threading
import time
import uuid

import numpy as np
import pytest

import addon_env

pytestmark = pytest.mark.skipif(importlib.util.find_spec("invertavatar") is None,
                                reason="the backend package is not importable")


@pytest.fixture()
def live_backend(tmp_path, monkeypatch, ict_model_backend):
    import torch
    import uvicorn

    from invertavatar.io.bundle import write_bundle
    from invertavatar.neural.checkpoints import save_prior
    from invertavatar.neural.config import tiny_config
    from invertavatar.neural.inversion.checkpoints import save_encoders
    from invertavatar.neural.inversion.config import tiny_encoder_config
    from invertavatar.neural.inversion.model import InversionNet
    from invertavatar.neural.prior.generator import Next3DGenerator
    from invertavatar.renderers.synthetic import synthetic_bundles
    from invertavatar.server.app import create_app
    from invertavatar.server.config import ServerConfig

    torch.manual_seed(0)
    checkpoints = tmp_path / "checkpoints"
    generator = Next3DGenerator(tiny_config())
    net = InversionNet(generator, tiny_encoder_config()).eval()
    save_prior(checkpoints / "prior-tiny.safetensors", generator)
    save_encoders(checkpoints / "encoders.safetensors", net)
    monkeypatch.setenv("INVERTAVATAR_CHECKPOINTS", str(checkpoints))
    _, neural = synthetic_bundles(ict_model_backend, net)
    token = "e" * 43
    app = create_app(ServerConfig.create(tmp_path / "data", cleanup_interval_s=3600.0), token)
    avatar_id = uuid.uuid4().hex
    folder = app.state.service.worker.avatar_dir(avatar_id)
    write_bundle(folder, neural)
    app.state.service.store.put_avatar(avatar_id, 1, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", token, avatar_id, folder
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def ict_model_backend():
    from invertavatar.headmodel import load_head_model

    return load_head_model("ict")


def _f12(bpy, path):
    bpy.context.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_f12_draws_with_both_renderers_through_the_scene_camera(clean_scene, live_backend, tmp_path):
    import torch

    from invertavatar.io.bundle import read_bundle
    from invertavatar.render import Camera
    from invertavatar.renderers import render

    bpy = clean_scene
    url, token, avatar_id, folder = live_backend
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    prefs.backend_mode, prefs.remote_url, prefs.token = "REMOTE", url, token
    try:
        bpy.ops.invertavatar.import_bundle(filepath=str(folder / "manifest.json"))
        head = bpy.context.view_layer.objects.active
        head.invertavatar.avatar_id = avatar_id
        scene = bpy.context.scene
        camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
        scene.collection.objects.link(camera)
        scene.camera = camera
        coords = np.empty(len(head.data.vertices) * 3, np.float32)
        head.data.vertices.foreach_get("co", coords)
        coords = coords.reshape(-1, 3)
        centre = (coords.min(0) + coords.max(0)) / 2
        camera.location = (centre[0] + 0.25, centre[1] - 0.85, centre[2] + 0.05)
        camera.rotation_euler = (math.pi / 2, 0.0, math.radians(16))
        bpy.context.view_layer.objects.active = head
        scene.render.engine = "INVERTAVATAR_PREVIEW"
        scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 80, 64, 100
        scene.view_settings.view_transform = "Standard"
        scene.invertavatar.renderer = "ALBEDO"
        albedo = _f12(bpy, tmp_path / "albedo.png")
        scene.invertavatar.renderer = "NEURAL"
        neural = _f12(bpy, tmp_path / "neural.png")
        scene.invertavatar.renderer = "AUTO"
        auto = _f12(bpy, tmp_path / "auto.png")
        # The camera the engine sent, rebuilt the way the add-on builds it, for the backend's own render.
        from blender_addon.core.camera import render_camera

        depsgraph = bpy.context.evaluated_depsgraph_get()
        projection = camera.calc_matrix_camera(depsgraph, x=80, y=64)
        request = render_camera(np.array(projection), np.array(camera.matrix_world), np.array(head.matrix_world),
                                80, 64)
    finally:
        prefs.backend_mode, prefs.token = "LOCAL", ""
    assert albedo.shape == neural.shape == (64, 80, 3)
    assert np.abs(albedo - neural).mean() > 10  # two different renderers
    assert np.array_equal(neural, auto)  # a neural avatar defaults to the neural renderer
    bundle = read_bundle(folder)
    cam = Camera(*(torch.tensor(request[k], dtype=torch.float32) for k in ("K", "R", "t")), 80, 64)
    expected = render(bundle, "albedo", camera=cam, background=(128, 128, 128)).image.astype(int)
    assert np.abs(albedo - expected).max() <= 2  # F12 shows the backend's pixels for Blender's camera
    assert json.loads((folder / "manifest.json").read_text())["mode"] == "neural"
