"""End to end: the add-on starts a real backend (`python -m invertavatar.server`) through its local-backend
launcher, uploads the astronaut photo, and builds the avatar; then previews it through the real render endpoint."""

import importlib.util
import json
import os
import re
import shlex
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

import addon_env

REPO = Path(__file__).resolve().parents[2]
ASSETS = Path("/work/shared/assets")


def _missing() -> str:
    if importlib.util.find_spec("invertavatar") is None or importlib.util.find_spec("invertavatar.server") is None:
        return "invertavatar.server is not importable (run with PYTHONPATH=backend once the server has landed)"
    import invertavatar.pipeline as pipeline

    if not hasattr(pipeline, "run_job"):
        return "invertavatar.pipeline.run_job is not there yet"
    if not (ASSETS / "ict-face-model" / "ict_face_light.npz").is_file():
        return f"the offline assets are not in {ASSETS}"
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "ready")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _evaluated(bpy, obj):
    bpy.context.view_layer.update()
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    coords = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", coords)
    return coords.reshape(-1, 3)


def _check_rig_deforms(bpy, head):
    """On the pipeline's own bundle: jawOpen opens the mouth, eye_L turns only the left eye's vertices."""
    rig = head.parent
    assert {g.name for g in head.vertex_groups} >= {"neck", "head", "jaw", "eye_L", "eye_R"}
    rest = _evaluated(bpy, head)
    head.data.shape_keys.key_blocks["jawOpen"].value = 1.0
    assert np.abs(_evaluated(bpy, head) - rest).max() > 0.003
    head.data.shape_keys.key_blocks["jawOpen"].value = 0.0
    rig.pose.bones["eye_L"].rotation_quaternion = (np.cos(0.15), 0.0, 0.0, np.sin(0.15))
    moved = np.linalg.norm(_evaluated(bpy, head) - rest, axis=1) > 1e-4
    rig.pose.bones["eye_L"].rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
    assert 0 < moved.sum() < len(rest) // 4
    assert (_evaluated(bpy, head)[moved][:, 0] > 0).mean() > 0.95  # the subject's left is +X in Blender too


def test_astronaut_photo_becomes_an_avatar(clean_scene, tmp_path, monkeypatch):
    from skimage import data
    from PIL import Image

    bpy = clean_scene
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    port = _free_port()
    data_dir = tmp_path / "server-data"
    monkeypatch.setenv("INVERTAVATAR_BACKEND_CMD", f"{shlex.quote(sys.executable)} -m invertavatar.server --host "
                       f"127.0.0.1 --port {port} --data-dir {shlex.quote(str(data_dir))}")
    monkeypatch.setenv("INVERTAVATAR_ASSETS", str(ASSETS))
    monkeypatch.setenv("INVERTAVATAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "backend"), os.environ.get("PYTHONPATH", "")]))
    user_dir = addon_env.addon_module("preferences").user_dir()
    (user_dir / "backend.json").write_text(json.dumps({"url": f"http://127.0.0.1:{port}"}))
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    prefs.backend_mode, prefs.token, prefs.read_timeout, prefs.job_timeout = "LOCAL", "", 120.0, 15.0
    try:
        assert bpy.ops.invertavatar.start_backend() == {"FINISHED"}
        assert bpy.ops.invertavatar.test_connection() == {"FINISHED"}
        assert "API 1" in bpy.context.window_manager.invertavatar.backend_info
        bpy.ops.invertavatar.add_inputs(filepath=str(photo))
        assert bpy.ops.invertavatar.reconstruct() == {"FINISHED"}, bpy.context.window_manager.invertavatar.status
        head = bpy.context.view_layer.objects.active
        assert re.fullmatch(r"[0-9a-f]{32}", head.invertavatar.avatar_id)
        assert head.name == "astronaut_head" and head.parent.type == "ARMATURE"
        keys = head.data.shape_keys.key_blocks
        assert len(keys) == 53 and keys[1].name == "eyeBlinkLeft" and keys[-1].name == "tongueOut"
        assert head.data.materials[0].node_tree.nodes["Albedo"].image.size[0] > 0
        assert 0.0 < head.invertavatar.coverage <= 1.0
        _check_rig_deforms(bpy, head)
        # Neural preview through the real render endpoint.
        scene = bpy.context.scene
        camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
        scene.collection.objects.link(camera)
        scene.camera = camera
        # The engine renders through the scene camera: put it 0.9 m in front of the face (which looks down -Y).
        coords = _evaluated(bpy, head)
        centre = (coords.min(0) + coords.max(0)) / 2
        camera.location = (centre[0], centre[1] - 0.9, centre[2])
        camera.rotation_euler = (np.pi / 2, 0.0, 0.0)
        bpy.context.view_layer.objects.active = head
        scene.render.engine = "INVERTAVATAR_PREVIEW"
        scene.render.resolution_x = scene.render.resolution_y = 64
        scene.render.resolution_percentage = 100
        scene.render.filepath = str(tmp_path / "preview.png")
        bpy.ops.render.render(write_still=True)
        pixels = np.asarray(Image.open(tmp_path / "preview.png").convert("RGB"), dtype=np.float32)
        assert pixels.shape == (64, 64, 3) and pixels.std() > 5.0  # a face, not a flat background
    finally:
        bpy.ops.invertavatar.stop_backend()
        prefs.backend_mode = "LOCAL"
    log = user_dir / "logs" / "backend.log"
    assert "Traceback" not in log.read_text(errors="replace")
