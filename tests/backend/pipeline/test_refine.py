"""Refinement continues from the saved state: it adds what the new frames bring and matches a single run."""

from __future__ import annotations

import numpy as np

from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job

TEXTURE_SIZE = 256


def test_refine_equals_reconstructing_all_frames_at_once(synthetic_views, tmp_path):
    paths = [p for p, _ in synthetic_views[:3]]
    at_once = read_bundle(run_job(JobSpec(paths, tmp_path / "once.avatar", texture_size=TEXTURE_SIZE, accept_any_face=True)).bundle)
    first = run_job(JobSpec(paths[:1], tmp_path / "steps.avatar", texture_size=TEXTURE_SIZE, accept_any_face=True)).bundle
    before = read_bundle(first)
    run_job(JobSpec(paths[1:], tmp_path / "steps.avatar", refine=first, texture_size=TEXTURE_SIZE, accept_any_face=True))
    stepwise = read_bundle(tmp_path / "steps.avatar")

    # Stated tolerance: the incremental state is exact (float64 information, float32 texture sums), so the two
    # differ only by float32 rounding in the fits: 1e-5 m on vertices and 1 grey level on the texture.
    assert np.abs(stepwise.mesh["vertices"] - at_once.mesh["vertices"]).max() < 1e-5
    assert np.abs(stepwise.albedo.astype(int) - at_once.albedo.astype(int)).max() <= 1
    assert stepwise.manifest["frames"] == at_once.manifest["frames"] == {"seen": 3, "used": 3, "skipped": 0}
    assert stepwise.manifest["coverage"] > before.manifest["coverage"]
    assert stepwise.manifest["refined_from"] == before.manifest["created"]


def fusion_state(bundle) -> dict:
    import io

    with np.load(io.BytesIO(bundle.state["texture_fusion.npz"])) as data:
        return {key: data[key] for key in data.files}


def test_refine_keeps_texels_the_new_frames_do_not_see(synthetic_views, tmp_path):
    front, side = synthetic_views[0][0], synthetic_views[4][0]  # yaw 0 and yaw 0.75
    first = read_bundle(run_job(JobSpec([front], tmp_path / "a.avatar", texture_size=TEXTURE_SIZE, accept_any_face=True)).bundle)
    run_job(JobSpec([side], tmp_path / "a.avatar", refine=tmp_path / "a.avatar", texture_size=TEXTURE_SIZE, accept_any_face=True))
    refined = read_bundle(tmp_path / "a.avatar")
    before, after = fusion_state(first), fusion_state(refined)
    weight_before, weight_after = before["face_weight_sum"], after["face_weight_sum"]
    untouched = (weight_before > 0) & (weight_after == weight_before)
    added = weight_after > weight_before
    assert untouched.sum() > 1000 and added.sum() > 1000  # the side view saw some texels and not others
    np.testing.assert_array_equal(after["face_colour_sum"][untouched], before["face_colour_sum"][untouched])
    assert (weight_after >= weight_before).all()  # evidence only accumulates
    assert refined.manifest["coverage"] > first.manifest["coverage"]
