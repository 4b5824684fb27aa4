"""The protocol on a clip the test renders itself: the ICT head with a known texture under changing pose and
expression; its held-out part also shows an empty frame stretch (the face leaves) and a cut to another person."""

from __future__ import annotations

import json

import numpy as np
import pytest

from invertavatar.errors import InvertAvatarError
from invertavatar.evaluation import EvalSpec, evaluate_clip
from invertavatar.evaluation.report import SCHEMA, SCHEMA_VERSION, write_report
from invertavatar.pipeline.synthetic import render_view

N_FRAMES, SIZE = 36, 320
BUILD_YAWS = [0.0, 0.8, -0.8, 0.5, -0.5, 0.25, -0.25, 0.65, -0.65]  # the first keyframe is frontal, then new poses
HELD_YAWS = [0.75, -0.75]
LEAVES, CUT = range(29, 31), range(33, 36)  # held-out part is frames 25..35 (the last 30 %)


@pytest.fixture(scope="module")
def evaluation(ict_model, ground_truth, known_albedo, tmp_path_factory, clip_writer):
    jaw = ict_model.expression_names.index("jawOpen")
    other_identity = np.random.default_rng(99).normal(0, 0.8, ict_model.n_identity).astype(np.float32)
    other_albedo = np.ascontiguousarray(known_albedo[..., ::-1])  # a bluish stranger

    def frames():
        for i in range(N_FRAMES):
            if i in LEAVES:
                yield np.full((SIZE, SIZE, 3), 120, np.uint8)
                continue
            expression = np.zeros(ict_model.n_expression, np.float32)
            expression[jaw] = 0.3 * (1 - np.cos(2 * np.pi * i / 10))
            yaw = BUILD_YAWS[i % len(BUILD_YAWS)] if i < 25 else HELD_YAWS[i % 2]
            identity, albedo = (other_identity, other_albedo) if i in CUT else (ground_truth["identity"], known_albedo)
            yield render_view(ict_model, identity, expression, (yaw, 0.05 * np.sin(i), 0), albedo, size=SIZE,
                              shading=False).image

    folder = tmp_path_factory.mktemp("eval")
    clip = clip_writer(folder / "synthetic.mp4", frames(), fps=10, codec="libx264")
    report, strips = evaluate_clip(EvalSpec(clip, frames=[1, 6], texture_size=256, max_heldout=11))
    return report, strips, write_report(report, strips, folder / "out")


def _run(report, k):
    return next(r for r in report["runs"] if r["k"] == k)


def test_report_follows_the_versioned_schema(evaluation):
    report, _, written = evaluation
    assert [p.name for p in written] == ["eval.json", "eval.png", "eval_strip.png"]
    assert json.loads(written[0].read_text()) == report
    assert report["schema"] == SCHEMA and report["schema_version"] == SCHEMA_VERSION
    assert report["clip"]["frames"] == N_FRAMES and report["clip"]["heldout_frames"] == list(range(25, 36))
    assert report["clip"]["build_frames"] == [0, 22]
    assert report["lpips"]["available"] is (report["lpips"]["reason"] is None)
    for run in report["runs"]:
        assert len(run["frames"]) == 11 and {"summary", "events", "build"} <= set(run)


def test_more_input_frames_with_new_poses_reproduce_held_out_frames_better(evaluation):
    report = evaluation[0]
    one, six = _run(report, 1), _run(report, 6)
    assert one["keyframes_used"] == 1 and six["keyframes_used"] == 6
    scored = [i for i in range(25, 36) if i not in LEAVES and i not in CUT]
    psnr = {k: {f["index"]: f["psnr"] for f in _run(report, k)["frames"] if f["status"] == "tracked"} for k in (1, 6)}
    assert set(psnr[1]) == set(psnr[6]) == set(scored)
    assert six["summary"]["psnr"]["mean"] > one["summary"]["psnr"]["mean"]
    assert 15 < one["summary"]["psnr"]["mean"] < 60 and 0 < one["summary"]["ssim"]["mean"] <= 1
    assert six["summary"]["landmark_error_iod"]["max"] < 0.1


def test_face_leaving_and_cut_are_reported_not_averaged(evaluation):
    report = evaluation[0]
    for run in report["runs"]:
        status = {f["index"]: f["status"] for f in run["frames"]}
        assert all(status[i] == "no_face" for i in LEAVES)
        assert all(status[i] == "other_person" for i in CUT)
        assert all("appearance" in f["reason"] for f in run["frames"] if f["index"] in CUT)
        assert {"status": "no_face", "first_frame": 29, "last_frame": 30, "count": 2} in run["events"]
        assert {"status": "other_person", "first_frame": 33, "last_frame": 35, "count": 3} in run["events"]
        tracked = [f["psnr"] for f in run["frames"] if f["status"] == "tracked"]
        assert run["summary"]["tracked_share"] == pytest.approx(len(tracked) / 11, abs=1e-4)
        assert run["summary"]["psnr"]["mean"] == pytest.approx(np.mean(tracked), abs=1e-3)
    assert any("29-30" in w and "no_face" in w for w in report["warnings"])
    assert any("33-35" in w and "other_person" in w for w in report["warnings"])


def test_photo_is_refused_with_a_clear_error(tmp_path, astronaut):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut).save(photo)
    with pytest.raises(InvertAvatarError) as error:
        evaluate_clip(EvalSpec(photo))
    assert error.value.code == "invalid_input" and "clip" in error.value.hint
    with pytest.raises(InvertAvatarError):
        evaluate_clip(EvalSpec(photo, frames=[0]))


def test_neural_mode_without_checkpoints_stops_before_any_work(tmp_path):
    clip = tmp_path / "missing-checkpoints.mp4"  # never opened: the check comes first
    with pytest.raises(InvertAvatarError) as error:
        evaluate_clip(EvalSpec(clip, mode="neural"))
    assert error.value.code == "neural_unavailable" and "fit" in error.value.hint
