"""The modal path of the job operators: TIMER events poll the worker, the avatar is built inside modal(), Esc
cancels on the backend. Headless Blender has no event loop, so the test feeds the events itself."""

import time
from types import SimpleNamespace

import addon_env
from stub_backend import StubBackend


class _Flow:
    """A plain-Python stand-in for the operator instance, running the real class's methods."""

    def __init__(self, operator_class):
        flow = addon_env.addon_module("operators.reconstruct")._JobFlow
        self.reports = []
        for name in ("_prepare", "_fail", "_complete", "_stop_timer", "modal", "_inputs", "_options", "_refine_id"):
            setattr(self, name, getattr(flow, name).__get__(self))
        self._build = operator_class._build.__get__(self)
        self._timer = None

    def report(self, kind, text):
        self.reports.append((set(kind), text))


def _drive(flow, bpy, event_type="TIMER", until=20.0):
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        result = flow.modal(bpy.context, SimpleNamespace(type=event_type, value="PRESS"))
        if result != {"RUNNING_MODAL"}:
            return result
        time.sleep(0.02)
    raise AssertionError("the modal operator never finished")


def _prepare(bpy, stub, tmp_path):
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(b"photo")
    bpy.ops.invertavatar.add_inputs(filepath=str(photo))
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    prefs.backend_mode, prefs.remote_url, prefs.token = "REMOTE", stub.url, "secret"
    return prefs


def test_timer_polls_then_builds_inside_modal(clean_scene, ict_bundle_dir, tmp_path, monkeypatch):
    bpy = clean_scene
    module = addon_env.addon_module("operators.reconstruct")
    op_class = module.INVERTAVATAR_OT_reconstruct
    stages = []
    show = module._show_progress
    monkeypatch.setattr(module, "_show_progress", lambda context, event: (stages.append(event.stage),
                                                                          show(context, event)))
    with StubBackend(ict_bundle_dir, steps=4) as stub:
        prefs = _prepare(bpy, stub, tmp_path)
        try:
            flow = _Flow(op_class)
            flow._runner = flow._prepare(bpy.context)
            flow._runner.poll_interval = 0.01
            assert bpy.context.window_manager.invertavatar.running
            flow._runner.start()
            result = None
            while result is None:
                step = flow.modal(bpy.context, SimpleNamespace(type="TIMER", value="NOTHING"))
                result = None if step == {"RUNNING_MODAL"} else step
                time.sleep(0.01)
            assert flow.modal(bpy.context, SimpleNamespace(type="MOUSEMOVE", value="NOTHING")) == {"PASS_THROUGH"}
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
    assert result == {"FINISHED"}
    assert stages[:2] == ["connect", "upload"] and {"track", "texture"} <= set(stages)  # what the panel showed
    assert bpy.data.objects["astronaut_head"].invertavatar.avatar_id == "av-job1"
    assert not bpy.context.window_manager.invertavatar.running


def test_escape_cancels_the_backend_job_and_builds_nothing(clean_scene, ict_bundle_dir, tmp_path):
    bpy = clean_scene
    op_class = addon_env.addon_module("operators.reconstruct").INVERTAVATAR_OT_reconstruct
    with StubBackend(ict_bundle_dir, scenario="hang") as stub:
        prefs = _prepare(bpy, stub, tmp_path)
        try:
            flow = _Flow(op_class)
            flow._runner = flow._prepare(bpy.context)
            flow._runner.poll_interval = 0.01
            flow._runner.start()
            while not stub.jobs:
                time.sleep(0.01)
            assert bpy.ops.invertavatar.cancel.poll()  # the sidebar's Cancel button is live while it runs
            assert flow.modal(bpy.context, SimpleNamespace(type="ESC", value="PRESS")) == {"RUNNING_MODAL"}
            result = _drive(flow, bpy)
        finally:
            prefs.backend_mode, prefs.token = "LOCAL", ""
        assert stub.cancel_requests == ["job1"]
    assert result == {"CANCELLED"} and len(bpy.data.objects) == 0
    job = bpy.context.window_manager.invertavatar
    assert "cancelled" in job.status.lower() and not job.running
