"""Whole-clip keyframe choice: the best frames wherever they come, one per view first, expressions, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from invertavatar.detect import Detection
from invertavatar.headmodel import ARKIT_NAMES
from invertavatar.pipeline.clip_keyframes import (ClipKeyframes, MIN_GAP_S, VIEW_COUNT, face_crop, view_angles, view_bin)
from invertavatar.track import FrameFit

FLIP = np.diag([1.0, -1.0, -1.0])
FPS = 25.0


def _rotation(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """Model → OpenCV camera rotation of a head turned by ``yaw`` (about +Y) and ``pitch`` (about +X)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    turn = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return FLIP @ turn


def _frame(index: int, yaw: float = 0.0, pitch: float = 0.0, blink: float = 0.0, jaw: float = 0.0,
           error: float = 0.01, size: int = 320):
    arkit = np.zeros(len(ARKIT_NAMES), np.float32)
    arkit[ARKIT_NAMES.index("eyeBlinkLeft")] = arkit[ARKIT_NAMES.index("eyeBlinkRight")] = blink
    arkit[ARKIT_NAMES.index("jawOpen")] = jaw
    box = np.array([100, 80, 100 + size, 80 + size], np.float32)
    detection = Detection(box=box, landmarks=np.zeros((478, 2), np.float32), landmarks_z=None,
                          scheme="mediapipe478", blendshapes=arkit, head_pose=None, faces_found=1,
                          image_size=(640, 640))
    fit = FrameFit(index=index, time=index / FPS, source="clip", image_size=(640, 640), rotation=_rotation(yaw, pitch),
                   translation=np.array([0, 0, 0.5]), expression=np.zeros(3), arkit=arkit, focal=800.0,
                   landmark_error_iod=error)
    return detection, fit


IMAGE = np.zeros((640, 640, 3), np.uint8)


def _offer(keys: ClipKeyframes, index: int, sharpness: float, **kwargs) -> bool:
    detection, fit = _frame(index, **kwargs)
    return keys.offer(index, index / FPS, IMAGE, detection, fit, sharpness)


def test_view_angles_follow_the_head():
    assert view_angles(_rotation(0.0)) == pytest.approx((0.0, 0.0), abs=1e-9)
    yaw, pitch = view_angles(_rotation(0.4, -0.2))
    assert abs(yaw) == pytest.approx(0.4, abs=1e-6) and abs(pitch) == pytest.approx(0.2, abs=1e-6)
    assert np.sign(view_angles(_rotation(0.3))[0]) != np.sign(view_angles(_rotation(-0.3))[0])
    assert view_bin(0.0, 0.0) == (0, 0) and view_bin(np.radians(80), 0.0) == (4, 0)  # outermost bin


def test_best_frames_are_taken_even_when_they_come_last():
    keys = ClipKeyframes(budget=3)
    for i in range(300):  # ten blurred seconds of the same frontal view, then two sharp seconds
        _offer(keys, i, sharpness=0.2 if i < 250 else 0.9)
    chosen = keys.choose()
    assert len(chosen) == 3
    assert all(c.index >= 250 for c in chosen)
    times = sorted(c.time for c in chosen)
    assert min(np.diff(times)) >= MIN_GAP_S  # no two near-duplicates of the same moment


def test_one_frame_per_view_before_a_second_of_any_view():
    keys = ClipKeyframes(budget=3)
    index = 0
    for yaw in (0.0, 0.5, -0.5):  # frontal, then each side, many frames each
        for _ in range(50):
            _offer(keys, index, sharpness=0.8 if yaw == 0.0 else 0.5, yaw=yaw)
            index += 1
    views = {c.view for c in keys.choose()}
    assert len(views) == 3
    # With room for more, further frames of each view follow (more frames of a view lower the texture noise).
    keys.budget = 9
    assert len(keys.choose()) == 9


def test_closed_eyes_and_open_mouth_are_seen_when_the_budget_allows():
    keys = ClipKeyframes(budget=4)
    for i in range(100):
        _offer(keys, i, sharpness=0.8, blink=1.0 if i == 40 else 0.0, jaw=0.7 if i == 70 else 0.0)
    chosen = [c.index for c in keys.choose()]
    assert 40 in chosen and 70 in chosen
    # For texture, neutral frames are preferred: with one keyframe the frontal pick is not the blink or the yawn.
    keys.budget = 1
    assert keys.choose()[0].index not in (40, 70)


def test_memory_stays_bounded_however_long_the_clip():
    keys = ClipKeyframes(budget=4)
    rng = np.random.default_rng(0)
    for i in range(3000):
        _offer(keys, i, sharpness=float(rng.uniform(0.2, 0.9)), yaw=float(rng.uniform(-1, 1)),
               pitch=float(rng.uniform(-0.5, 0.5)), blink=float(rng.uniform() > 0.95))
    assert keys._count() <= keys.capacity <= VIEW_COUNT + 2 + 2 * 4 + 8
    assert len(keys.choose()) == 4


def test_worse_tracked_or_smaller_faces_lose():
    keys = ClipKeyframes(budget=1)
    _offer(keys, 0, sharpness=0.8, error=0.08)  # badly tracked
    _offer(keys, 10, sharpness=0.8, size=120)  # small face
    _offer(keys, 20, sharpness=0.8)
    assert keys.choose()[0].index == 20


def test_crop_view_keeps_the_projection():
    """A point projected through the crop's camera lands on the same image content as through the frame's."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (640, 640, 3), dtype=np.uint8)
    detection, fit = _frame(0)
    fit.principal = (300.0, 330.0)  # off-centre, as for a crop of a crop
    keys = ClipKeyframes(budget=1)
    keys.offer(0, 0.0, image, detection, fit, 0.9)
    candidate = keys.choose()[0]
    crop, crop_detection, crop_fit = candidate.crop_view(fit)
    x, y = candidate.offset
    assert np.array_equal(crop, image[y:y + crop.shape[0], x:x + crop.shape[1]])
    point = np.array([0.01, 0.02, 0.03])
    for f in (fit, crop_fit):
        k, r, t = (a.numpy().astype(np.float64) for a in f.camera_tensors())
        p = k @ (r @ point + t)
        f.pixel = p[:2] / p[2]
    assert np.allclose(fit.pixel - [x, y], crop_fit.pixel, atol=1e-3)
    assert np.allclose(crop_detection.box, detection.box - [x, y, x, y])
    assert crop_detection.image_size == crop.shape[:2]


def test_face_crop_is_clipped_to_the_image():
    image = np.zeros((100, 200, 3), np.uint8)
    crop, (x, y) = face_crop(image, np.array([150, 10, 199, 60]))
    assert x >= 0 and y == 0 and x + crop.shape[1] <= 200 and crop.shape[0] <= 100


def test_pipeline_takes_late_sharp_frames_and_spends_the_budget(ict_model, ground_truth, known_albedo, tmp_path,
                                                                  clip_writer):
    """A clip whose first frames are blurred and whose sharp frames come last: the keyframes are the sharp ones,
    and a clip with enough distinct frames gets exactly the budget."""
    import cv2

    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job
    from invertavatar.pipeline.synthetic import render_view

    neutral = np.zeros(ict_model.n_expression, np.float32)
    views = {}

    def frames():
        for i in range(24):
            yaw = 0.35 * np.sin(i / 3.0)  # the head keeps turning, so every part of the clip shows several views
            if round(yaw, 3) not in views:
                views[round(yaw, 3)] = render_view(ict_model, ground_truth["identity"], neutral, (yaw, 0, 0),
                                                   known_albedo, size=320).image
            image = views[round(yaw, 3)]
            yield cv2.GaussianBlur(image, (0, 0), 3.0) if i < 16 else image

    path = clip_writer(tmp_path / "late.mp4", frames(), fps=12)
    result = run_job(JobSpec([path], tmp_path / "late.avatar", max_frames=3, texture_size=128))
    manifest = read_bundle(result.bundle).manifest
    assert manifest["frames"]["used"] == 3
    assert manifest["keyframes"] and min(manifest["keyframes"]) >= 16


def test_a_view_seen_only_blurred_waits_for_the_good_ones():
    keys = ClipKeyframes(budget=2)
    for i in range(40):
        _offer(keys, i, sharpness=0.8, yaw=0.0)
    for i in range(40, 60):
        _offer(keys, i, sharpness=0.8, yaw=0.3)
    for i in range(60, 80):
        _offer(keys, i, sharpness=0.15, yaw=0.9)  # the farthest view, but only ever blurred
    assert {c.view[0] for c in keys.choose()} == {0, 1}
    keys.budget = 3
    assert len({c.view for c in keys.choose()}) == 3  # with room to spare it is still used
