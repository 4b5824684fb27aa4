"""Refinement continues from the saved state: it adds what the new frames bring and matches a single run."""

from __future__ import annotations

import numpy as np

from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job

TEXTURE_SIZE = 256


def reconstruct_at_once_and_stepwise(paths, folder, **options):
    at_once = read_bundle(run_job(JobSpec(paths, folder / "once.avatar", texture_size=TEXTURE_SIZE,
                                          accept_any_face=True, **options)).bundle)
    first = run_job(JobSpec(paths[:1], folder / "steps.avatar", texture_size=TEXTURE_SIZE, accept_any_face=True,
                            **options)).bundle
    before = read_bundle(first)
    run_job(JobSpec(paths[1:], folder / "steps.avatar", refine=first, texture_size=TEXTURE_SIZE, accept_any_face=True,
                    **options))
    return at_once, before, read_bundle(folder / "steps.avatar")


def test_refine_equals_reconstructing_all_frames_at_once(synthetic_views, tmp_path):
    # The landmark state is exactly incremental; the multi-view refinement of a job's keyframes is not (next test).
    paths = [p for p, _ in synthetic_views[:3]]
    at_once, before, stepwise = reconstruct_at_once_and_stepwise(paths, tmp_path, multiview_identity=False)

    # Stated tolerance: the incremental state is exact (float64 information, float32 texture sums), so the two
    # differ only by float32 rounding in the fits: 1e-5 m on vertices and 1 grey level on the texture.
    assert np.abs(stepwise.mesh["vertices"] - at_once.mesh["vertices"]).max() < 1e-5
    assert np.abs(stepwise.albedo.astype(int) - at_once.albedo.astype(int)).max() <= 1
    assert stepwise.manifest["frames"] == at_once.manifest["frames"] == {"seen": 3, "used": 3, "skipped": 0}
    assert stepwise.manifest["coverage"] > before.manifest["coverage"]
    assert stepwise.manifest["refined_from"] == before.manifest["created"]


def test_refine_with_the_multiview_shape_stays_close_to_one_run(synthetic_views, tmp_path, shape_error_mm):
    """The colour agreement sees only the keyframes of its own job (earlier ones enter through the identity state),
    so a refined avatar is close to, not equal to, one built from all frames at once."""
    paths = [p for p, _ in synthetic_views[:4]]  # one photo, then three (the refinement needs three)
    at_once, before, stepwise = reconstruct_at_once_and_stepwise(paths, tmp_path)
    assert at_once.manifest["identity_refinement"]["applied"]
    assert stepwise.manifest["identity_refinement"]["applied"]
    errors = {name: shape_error_mm(b.mesh["vertices"]) for name, b in
              (("one photo", before), ("at once", at_once), ("stepwise", stepwise))}
    print("neutral shape error (mm):", errors)
    assert errors["stepwise"] < errors["one photo"]
    assert abs(errors["stepwise"] - errors["at once"]) < 0.15
    assert stepwise.manifest["coverage"] > before.manifest["coverage"]


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
