"""Job operators against the stub backend: success builds an avatar; every failure shows its message and leaves
the scene unchanged (the synchronous path that --background runs use)."""

import socket

import pytest

import addon_env
from stub_backend import StubBackend

STORES = ("objects", "meshes", "armatures", "materials", "images", "collections", "actions")


def _snapshot(bpy):
    return {s: len(getattr(bpy.data, s)) for s in STORES}


def test_reconstruct_builds_the_avatar(scene, ict_bundle_dir):
    bpy, prefs = scene
    with StubBackend(ict_bundle_dir) as stub:
        prefs.remote_url = stub.url
        assert bpy.ops.invertavatar.reconstruct() == {"FINISHED"}
    head = bpy.context.view_layer.objects.active
    assert head.name == "astronaut_head" and head.invertavatar.avatar_id == "av-job1"
    assert head.invertavatar.backend_url == stub.url
    assert len(head.data.shape_keys.key_blocks) == 53
    job = bpy.context.window_manager.invertavatar
    assert not job.running and not job.status_is_error and "ready" in job.status and job.progress == 1.0
    assert b'"max_frames": 64' in stub.uploads[0]["body"]


@pytest.mark.parametrize("case, message", [
    ("down", "Cannot reach the InvertAvatar backend"),
    ("token", "refused the access token"),
    ("version", "API version 2"),
    ("fail", "No face was found in astronaut.png. Use a photo where the face is visible"),
])
def test_failures_show_message_and_leave_scene_unchanged(scene, ict_bundle_dir, case, message):
    bpy, prefs = scene
    before = _snapshot(bpy)
    stub = StubBackend(ict_bundle_dir, api_version="2" if case == "version" else "1",
                       scenario="fail" if case == "fail" else "ok")
    with stub:
        prefs.remote_url = stub.url
        if case == "token":
            prefs.token = "wrong"
        if case == "down":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                prefs.remote_url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(RuntimeError, match=message):  # an ERROR report raises in bpy.ops
            bpy.ops.invertavatar.reconstruct()
    job = bpy.context.window_manager.invertavatar
    assert message in job.status and job.status_is_error and not job.running
    assert _snapshot(bpy) == before


def test_cancelled_job_leaves_scene_unchanged(scene, ict_bundle_dir):
    bpy, prefs = scene
    before = _snapshot(bpy)
    with StubBackend(ict_bundle_dir, scenario="server_cancel") as stub:
        prefs.remote_url = stub.url
        assert bpy.ops.invertavatar.reconstruct() == {"CANCELLED"}
    job = bpy.context.window_manager.invertavatar
    assert "cancelled" in job.status.lower() and not job.status_is_error and not job.running
    assert _snapshot(bpy) == before
    assert not bpy.ops.invertavatar.cancel.poll()  # nothing left running to cancel


def test_test_connection(scene, ict_bundle_dir):
    bpy, prefs = scene
    with StubBackend(ict_bundle_dir) as stub:
        prefs.remote_url = stub.url
        assert bpy.ops.invertavatar.test_connection() == {"FINISHED"}
    info = bpy.context.window_manager.invertavatar.backend_info
    assert "Backend 0.1.0" in info and "API 1" in info and "cpu" in info
    assert info.endswith("models: ict-face-model")
    assert not bpy.app.online_access  # headless bpy: online access is off, so a remote host is refused
    prefs.remote_url = "http://gpu-box.example:8765"
    with pytest.raises(RuntimeError, match="online access is turned off"):
        bpy.ops.invertavatar.test_connection()


def test_refine_and_animate_use_the_selected_avatar(scene, ict_bundle_dir):
    bpy, prefs = scene
    with StubBackend(ict_bundle_dir) as stub:
        prefs.remote_url = stub.url
        bpy.context.scene.invertavatar.animate_on_import = False
        bpy.ops.invertavatar.reconstruct()
        first = bpy.context.view_layer.objects.active
        assert first.data.shape_keys.animation_data is None
        assert bpy.ops.invertavatar.animate() == {"FINISHED"}
        assert b'name="avatar_id"\r\n\r\nav-job1' in stub.uploads[1]["body"]
        action = first.data.shape_keys.animation_data.action
        assert action is not None and bpy.context.scene.frame_end == 24
        assert bpy.ops.invertavatar.refine() == {"FINISHED"}
        assert b'name="avatar_id"\r\n\r\nav-job1' in stub.uploads[2]["body"]
    refined = bpy.context.view_layer.objects.active
    assert refined != first and refined.invertavatar.avatar_id == "av-job3"
    assert first.hide_get() and not refined.hide_get()


def test_a_bug_while_building_is_reported_and_does_not_stick(scene, ict_bundle_dir, monkeypatch):
    bpy, prefs = scene
    module = addon_env.addon_module("operators.reconstruct")
    monkeypatch.setattr(module, "build_avatar", lambda *a, **k: 1 / 0)
    before = _snapshot(bpy)
    with StubBackend(ict_bundle_dir) as stub:
        prefs.remote_url = stub.url
        with pytest.raises(RuntimeError, match="Building the avatar failed: ZeroDivisionError"):
            bpy.ops.invertavatar.reconstruct()
    job = bpy.context.window_manager.invertavatar
    assert not job.running and job.status_is_error and bpy.ops.invertavatar.reconstruct.poll()
    assert _snapshot(bpy) == before
