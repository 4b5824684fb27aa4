"""Clips: every frame tracked into tracks.json, faceless frames skipped and counted, keyframes chosen, cancel."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from invertavatar.errors import CancelledError
from invertavatar.headmodel import ARKIT_NAMES
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.synthetic import render_view

N_FRAMES, BLANK = 24, range(10, 13)
FPS = 12


@pytest.fixture(scope="module")
def synthetic_clip(ict_model, ground_truth, known_albedo, tmp_path_factory, clip_writer):
    """A head turning left to right while the jaw opens and closes; three frames in the middle show no face."""
    jaw = ict_model.expression_names.index("jawOpen")
    truth = []

    def frames():
        for i in range(N_FRAMES):
            if i in BLANK:
                yield np.full((384, 384, 3), 140, np.uint8)
                continue
            expression = np.zeros(ict_model.n_expression, np.float32)
            expression[jaw] = 0.5 * (1 - np.cos(2 * np.pi * i / 12))
            truth.append((i, expression[jaw]))
            yield render_view(ict_model, ground_truth["identity"], expression, (0.6 * (i / N_FRAMES - 0.5), 0, 0),
                              known_albedo, size=384).image

    path = clip_writer(tmp_path_factory.mktemp("clip") / "turn.mp4", frames(), fps=FPS)
    return path, dict(truth)


def test_clip_tracks_every_face_frame(synthetic_clip, tmp_path):
    path, jaw_truth = synthetic_clip
    result = run_job(JobSpec([path], tmp_path / "clip.avatar", max_frames=6, texture_size=256))
    bundle = read_bundle(result.bundle)
    tracks = bundle.tracks
    assert tracks["fps"] == pytest.approx(FPS) and tracks["arkit_names"] == list(ARKIT_NAMES)
    indices = [f["index"] for f in tracks["frames"]]
    assert indices == [i for i in range(N_FRAMES) if i not in BLANK]
    assert bundle.manifest["frames"]["skipped"] == len(BLANK)
    assert 2 <= bundle.manifest["frames"]["used"] <= 6
    frame = tracks["frames"][5]
    assert frame["time"] == pytest.approx(frame["index"] / FPS, abs=1e-3)
    assert np.linalg.norm(frame["head_rotation"]) == pytest.approx(1.0, abs=1e-4)
    jaw = ARKIT_NAMES.index("jawOpen")
    fitted = np.array([f["arkit"][jaw] for f in tracks["frames"]])
    true = np.array([jaw_truth[i] for i in indices])
    assert np.corrcoef(fitted, true)[0, 1] > 0.8
    # Yaw sweeps from the subject's right to left: the head rotation's y component rises.
    yaw = np.array([2 * np.arcsin(f["head_rotation"][2]) for f in tracks["frames"]])
    assert np.corrcoef(yaw, np.arange(len(yaw)))[0, 1] > 0.9


def test_cancel_stops_the_job_and_leaves_nothing(synthetic_clip, tmp_path):
    path, _ = synthetic_clip
    cancel = threading.Event()
    seen = []

    def progress(stage, fraction, message):
        seen.append(stage)
        if stage == "track":
            cancel.set()

    with pytest.raises(CancelledError):
        run_job(JobSpec([path], tmp_path / "c.avatar", texture_size=256), progress, cancel)
    assert seen.count("track") == 1  # stopped at the next frame
    assert not (tmp_path / "c.avatar").exists() and not list(tmp_path.iterdir())

