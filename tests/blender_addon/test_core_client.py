"""Backend client and job runner against the stub server on 127.0.0.1 (no bpy)."""

import socket
import threading
import time

import pytest

from blender_addon.core import errors as E
from blender_addon.core.bundle import read_bundle
from blender_addon.core.client import BackendClient, Timeouts, check_online_access, is_loopback_url
from blender_addon.core.errors import AddonError
from blender_addon.core.jobs import JobRunner
from stub_backend import StubBackend


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "astronaut.png"
    path.write_bytes(b"\x89PNG fake photo bytes")
    return path


def _runner(stub, photo, tmp_path, token="secret"):
    client = BackendClient(stub.url, token, Timeouts(connect=2, read=5))
    return JobRunner(client, [photo], {"mode": "fit", "every": 1}, tmp_path / "cache", poll_interval=0.01)


def test_successful_job_downloads_a_readable_bundle(ict_bundle_dir, photo, tmp_path):
    events = []
    with StubBackend(ict_bundle_dir) as stub:
        runner = _runner(stub, photo, tmp_path)
        bundle_dir = runner.run(events.append)
        upload = stub.uploads[0]
    assert runner.avatar_id == "av-job1"
    assert read_bundle(bundle_dir).vertices.shape == (26719, 3)
    assert [e.stage for e in events][:2] == ["connect", "upload"] and "texture" in [e.stage for e in events]
    assert b'name="options"' in upload["body"] and b'"mode": "fit"' in upload["body"]
    assert b'filename="astronaut.png"' in upload["body"] and b"fake photo bytes" in upload["body"]


def test_backend_down(photo, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = BackendClient(f"http://127.0.0.1:{port}", "x", Timeouts(connect=1, read=1))
    with pytest.raises(AddonError) as err:
        JobRunner(client, [photo], {}, tmp_path).run()
    assert err.value.code == E.BACKEND_DOWN and "Start the backend" in err.value.hint


def test_wrong_token(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir) as stub:
        with pytest.raises(AddonError) as err:
            _runner(stub, photo, tmp_path, token="wrong").run()
        assert stub.jobs == {}
    assert err.value.code == E.UNAUTHORIZED and "token" in err.value.hint


def test_version_mismatch(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir, api_version="2") as stub:
        with pytest.raises(AddonError) as err:
            _runner(stub, photo, tmp_path).run()
        assert stub.uploads == []
    assert err.value.code == E.VERSION_MISMATCH and "API version 2" in err.value.message


def test_failed_job_carries_the_backend_hint(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir, scenario="fail") as stub:
        with pytest.raises(AddonError) as err:
            _runner(stub, photo, tmp_path).run()
    assert err.value.code == "no_face"
    assert err.value.hint == "Use a photo where the face is visible and at least 100 pixels wide."
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_cancel_from_another_thread_reaches_the_backend(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir, scenario="hang") as stub:
        runner = _runner(stub, photo, tmp_path)
        runner.start()
        deadline = time.monotonic() + 10
        while not stub.jobs and time.monotonic() < deadline:
            time.sleep(0.01)
        runner.cancel()
        runner.join(10)
        events = runner.drain()
        assert stub.cancel_requests == ["job1"] and stub.jobs["job1"]["state"] == "cancelled"
    assert not runner.is_alive()
    assert events[-1].kind == "error" and events[-1].error.code == E.CANCELLED


def test_job_cancelled_on_the_server(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir, scenario="server_cancel") as stub:
        with pytest.raises(AddonError) as err:
            _runner(stub, photo, tmp_path).run()
    assert err.value.code == E.CANCELLED and "on the backend" in err.value.hint


def test_read_timeout_is_reported(photo, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        client = BackendClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "", Timeouts(connect=1, read=0.3))
        with pytest.raises(AddonError) as err:
            client.health()
    finally:
        silent.close()
    assert err.value.code == E.TIMEOUT and "timeout" in err.value.hint


def test_online_access_rule():
    assert is_loopback_url("http://127.0.0.1:8765") and is_loopback_url("http://localhost/x")
    assert is_loopback_url("http://[::1]:80") and not is_loopback_url("http://gpu-box.lan:8765")
    check_online_access("http://127.0.0.1:1", online_access=False)
    check_online_access("http://gpu-box.lan:8765", online_access=True)
    with pytest.raises(AddonError) as err:
        check_online_access("http://gpu-box.lan:8765", online_access=False)
    assert err.value.code == E.OFFLINE_REFUSED and "Allow Online Access" in err.value.hint


def test_bad_url_is_a_clear_error():
    with pytest.raises(AddonError, match="not an http"):
        BackendClient("ftp://x")


def test_many_status_polls_do_not_block_other_threads(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir, steps=5) as stub:
        runner = _runner(stub, photo, tmp_path)
        runner.start()
        ticks = 0
        while runner.is_alive():  # the "UI thread" keeps running while the worker polls
            ticks += 1
            threading.Event().wait(0.005)
        kinds = [e.kind for e in runner.drain()]
    assert kinds[-1] == "done" and ticks > 0


def test_job_timeout_cancels_on_the_backend(ict_bundle_dir, photo, tmp_path):
    with StubBackend(ict_bundle_dir, scenario="hang") as stub:
        runner = _runner(stub, photo, tmp_path)
        runner.job_timeout = 0.2
        with pytest.raises(AddonError) as err:
            runner.run()
        assert stub.cancel_requests == ["job1"]
    assert err.value.code == E.TIMEOUT and "job timeout" in err.value.hint
