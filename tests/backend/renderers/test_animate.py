"""Reenactment: ``invertavatar animate`` drives an avatar with a clip or tracks.json and writes one frame per
driving frame; cancel leaves no video; a fit-only avatar refuses the neural renderer before any work."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from invertavatar.errors import CancelledError, InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.renderers.reenact import animate


def _decode(path):
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def tracks_file(tmp_path_factory):
    jaw = ARKIT_NAMES.index("jawOpen")
    frames = []
    for i in range(5):
        arkit = [0.0] * 52
        arkit[jaw] = i / 4
        half = 0.15 * (i - 2)
        frames.append({"index": i, "time": i / 10, "arkit": arkit,
                       "head_rotation": [float(np.cos(half)), 0.0, float(np.sin(half)), 0.0],
                       "head_translation": [0.0, 0.0, 0.0], "gaze": {"eye_L": [0.0, 0.1], "eye_R": [0.0, 0.1]}})
    path = tmp_path_factory.mktemp("drive") / "tracks.json"
    path.write_text(json.dumps({"fps": 10.0, "source": "test", "arkit_names": list(ARKIT_NAMES), "frames": frames}))
    return path


def test_tracks_drive_every_frame(neural_setup, tracks_file, tmp_path):
    _, fit, neural = neural_setup
    for bundle, renderer in ((fit, "albedo"), (neural, "neural")):
        out = tmp_path / f"{renderer}.mp4"
        result = animate(bundle, tracks_file, out, size=64)
        frames = _decode(out)
        assert result.renderer == renderer and result.frames == 5 and len(frames) == 5
        assert frames[0].shape == (64, 64, 3)
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.1  # the performance moves


def test_cancel_leaves_no_video(neural_setup, tracks_file, tmp_path):
    _, fit, _ = neural_setup
    cancel = threading.Event()

    def progress(stage, fraction, message):
        if stage == "render":
            cancel.set()  # after the first frame

    with pytest.raises(CancelledError):
        animate(fit, tracks_file, tmp_path / "x.mp4", size=32, progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_refusals_come_before_any_work(neural_setup, tracks_file, tmp_path):
    _, fit, _ = neural_setup
    with pytest.raises(InvertAvatarError) as info:
        animate(fit, tracks_file, tmp_path / "x.mp4", renderer="neural")
    assert info.value.code == "no_neural_state"
    with pytest.raises(InvertAvatarError, match="side-by-side"):
        animate(fit, tracks_file, tmp_path / "x.mp4", side_by_side=True)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InvertAvatarError, match="tracks.json"):
        animate(fit, bad, tmp_path / "x.mp4")
    bad.write_text(json.dumps({"frames": [{"index": 0, "arkit": [0.0] * 3}]}))
    with pytest.raises(InvertAvatarError, match="frame 0 lacks"):
        animate(fit, bad, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.slow  # tracks a clip with the whole pipeline (~10 s)
def test_a_driving_clip_is_tracked_and_shown_side_by_side(neural_setup, ict_model, ground_truth, known_albedo,
                                                          clip_writer, tmp_path):
    from invertavatar.pipeline.synthetic import render_view

    _, fit, _ = neural_setup
    jaw = ict_model.expression_names.index("jawOpen")

    def frames():
        for i in range(6):
            expression = np.zeros(ict_model.n_expression, np.float32)
            expression[jaw] = 0.6 * (i % 3) / 2
            yield render_view(ict_model, ground_truth["identity"], expression, (0.1 * (i - 3), 0, 0), known_albedo,
                              size=256).image

    clip = clip_writer(tmp_path / "drive.mp4", frames(), fps=12)
    result = animate(fit, clip, tmp_path / "out.mp4", size=96, side_by_side=True)
    decoded = _decode(tmp_path / "out.mp4")
    assert result.frames == 6 and len(decoded) == 6 and result.fps == pytest.approx(12)
    assert decoded[0].shape == (96, 192, 3)  # square driving frame | avatar


def test_cli_animate(neural_setup, tracks_file, tmp_path, capsys):
    from invertavatar.cli.main import main

    _, fit, _ = neural_setup
    out = tmp_path / "cli.mp4"
    assert main(["animate", str(fit), "--drive", str(tracks_file), "-o", str(out), "--size", "48"]) == 0
    assert len(_decode(out)) == 5 and "5 frames" in capsys.readouterr().out
    assert main(["animate", str(fit), "--drive", str(tracks_file), "-o", str(out)]) == 1  # exists, no --force
