"""Blender cameras as backend cameras (no bpy), and the viewport's newest-request-wins preview queue."""

import math
import threading
import time

import numpy as np
import pytest

from blender_addon.core.camera import camera_in_avatar_frame, intrinsics_from_projection, render_camera
from blender_addon.core.errors import AddonError
from blender_addon.core.preview_queue import PreviewQueue


def _perspective(fx, fy, cx, cy, width, height, near=0.1, far=100.0):
    """An OpenGL projection with the given pixel intrinsics (principal point measured from the top-left)."""
    p = np.zeros((4, 4))
    p[0, 0], p[1, 1] = 2 * fx / width, 2 * fy / height
    p[0, 2], p[1, 2] = 1 - 2 * cx / width, 2 * cy / height - 1
    p[2, 2], p[2, 3] = -(far + near) / (far - near), -2 * far * near / (far - near)
    p[3, 2] = -1.0
    return p


def test_intrinsics_round_trip_and_orthographic_is_refused():
    k = intrinsics_from_projection(_perspective(300, 310, 70, 40, 160, 90), 160, 90)
    np.testing.assert_allclose(k, [[300, 0, 70], [0, 310, 40], [0, 0, 1]], atol=1e-9)
    ortho = np.eye(4)
    with pytest.raises(AddonError, match="perspective"):
        intrinsics_from_projection(ortho, 100, 100)


def test_a_blender_camera_in_front_of_the_face_is_the_backend_frontal_camera():
    # Blender: the face looks down -Y. A camera 0.8 m in front (at -Y), turned 90° about X, looks along +Y.
    cam = np.eye(4)
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    cam[:3, :3] = [[1, 0, 0], [0, c, -s], [0, s, c]]
    cam[:3, 3] = [0.0, -0.8, 0.05]
    r, t = camera_in_avatar_frame(cam, np.eye(4))
    np.testing.assert_allclose(r, np.diag([1.0, -1.0, -1.0]), atol=1e-9)  # docs/architecture.md's frontal camera
    np.testing.assert_allclose(-r.T @ t, [0.0, 0.05, 0.8], atol=1e-9)  # camera centre in backend axes
    # A moved, turned and scaled avatar object: the camera is expressed in its frame.
    avatar = np.eye(4)
    avatar[:3, :3] = 2.0 * np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90° about Z, scale 2
    avatar[:3, 3] = [1.0, 2.0, 3.0]
    r2, t2 = camera_in_avatar_frame(avatar @ cam, avatar)
    np.testing.assert_allclose(r2, r, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    request = render_camera(_perspective(100, 100, 32, 24, 64, 48), cam, np.eye(4), 64, 48)
    assert set(request) == {"K", "R", "t"} and np.asarray(request["K"]).shape == (3, 3)


def test_the_newest_request_wins_and_stale_ones_are_dropped():
    gate = threading.Event()
    sent = []

    def render(payload):
        sent.append(payload)
        gate.wait(5)
        return f"png{payload}".encode(), "neural"

    queue = PreviewQueue(render)
    assert queue.request("a", 1)
    deadline = time.monotonic() + 5
    while not queue.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not queue.request("a", 1)  # the same picture is not asked for twice
    for n in (2, 3, 4):
        assert queue.request(str(n), n)  # while "a" is in flight: only the newest waits
    assert queue.latest() is None  # nothing drawn yet, and request() never blocked
    gate.set()
    assert queue.wait_idle()
    assert sent == [1, 4] and queue.dropped == 2
    result = queue.take_new()
    assert result.png == b"png4" and result.renderer == "neural" and queue.take_new() is None
    queue.stop()


def test_errors_are_kept_and_the_last_picture_stays():
    calls = []

    def render(payload):
        calls.append(payload)
        if payload == "bad":
            raise AddonError("backend_unreachable", "down", "start it")
        return b"ok", "albedo"

    queue = PreviewQueue(render)
    queue.request("good", "good")
    assert queue.wait_idle()
    queue.request("bad", "bad")
    assert queue.wait_idle()
    assert queue.error is not None and queue.error.code == "backend_unreachable"
    assert queue.latest().png == b"ok"  # the last good picture is still drawn
    queue.stop()
