"""Synthetic ground truth: known identity, expressions, poses, camera and texture; 1, 4 and 8 views.

The views are added incrementally with refinement (1 → +3 → +7), which is the path artists use; a separate test
checks that this equals reconstructing the same views at once.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.headmodel import ARKIT_NAMES
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job

TEXTURE_SIZE = 512


def face_tile_psnr(albedo, known, mask) -> float:
    diff = (albedo[:2048, :2048][mask].astype(float) - known[:2048, :2048][mask].astype(float)) / 255.0
    return float(-10 * np.log10(np.mean(diff ** 2)))


@pytest.fixture(scope="module")
def incremental_results(synthetic_views, tmp_path_factory):
    folder = tmp_path_factory.mktemp("incremental")
    paths = [p for p, _ in synthetic_views]
    output = folder / "synthetic.avatar"
    results = {}
    done = 0
    for count in (1, 4, 8):
        # Renders of a flat-lit head are not photos: the human-face check (tested on its own) is not the subject.
        # De-lighting stays on, as for every job: the renders carry no light, so what it removes is each view's
        # small spurious fit (the texture's own correlation with the normals). With landmark-only shapes the views
        # then disagreed and the texture fell from 30.5 dB (1 view) to 29.6 dB (4, 8); with the multi-view shape
        # they line up and it rises: 30.5 / 32.1 / 32.5 dB (measured).
        spec = JobSpec(paths[done:count], output, refine=output if done else None, texture_size=TEXTURE_SIZE,
                       accept_any_face=True)
        run_job(spec)
        results[count] = read_bundle(output)
        done = count
    return results


def test_fit_errors_are_bounded_and_improve(incremental_results, ict_model, shape_error_mm):
    errors = {}
    for count, bundle in incremental_results.items():
        manifest = bundle.manifest
        assert manifest["frames"]["used"] == count
        assert manifest["metrics"]["landmark_error_iod_mean"] < 0.03
        errors[count] = shape_error_mm(bundle.mesh["vertices"])
    mean_shape = shape_error_mm(ict_model.vertices)
    print("neutral shape error (mm) by views:", errors, "mean shape:", mean_shape)
    # Landmarks alone gave 1.44 / 1.41 / 1.43 mm; with the keyframes' colour agreement (track/multiview.py) the jobs
    # of 3 and 4 new views give 1.45 / 0.83 / 0.82 mm (measured; a one-photo job has nothing to agree with).
    assert errors[4] < errors[1] - 0.3 and errors[8] < errors[1] - 0.3
    refinement = {n: b.manifest["identity_refinement"] for n, b in incremental_results.items()}
    assert refinement[1] is None  # one photo: nothing to agree with
    assert refinement[4]["applied"] and refinement[8]["applied"], refinement
    assert errors[8] < 1.0 < mean_shape


def inner_face_texels(model) -> np.ndarray:
    """(2048, 2048) mask of face-tile texels on the inner face (away from the seams with the back of the head)."""
    from invertavatar.texture.fusion import tile_geometry

    geometry = tile_geometry(model, "face", 512)
    inner = np.isin(geometry.corners.numpy(), model.regions["narrow_face"]).all(1)
    mask = np.zeros(512 * 512, bool)
    mask[geometry.texel.numpy()[inner]] = True
    return np.kron(mask.reshape(512, 512), np.ones((4, 4), bool))


def test_coverage_grows_and_texture_error_falls(incremental_results, known_albedo, ict_model):
    coverage = {n: b.manifest["coverage"] for n, b in incremental_results.items()}
    assert coverage[1] < coverage[4] < coverage[8]
    covered = inner_face_texels(ict_model)
    psnr = {n: face_tile_psnr(b.albedo, known_albedo, covered) for n, b in incremental_results.items()}
    seen_1 = incremental_results[1].coverage[:2048, :2048] > 0
    print("coverage:", coverage, "face-tile PSNR (dB):", psnr)
    assert psnr[1] < psnr[4] < psnr[8]
    assert face_tile_psnr(incremental_results[1].albedo, known_albedo, seen_1) > 20.0  # what one view saw is right


def test_expression_weights_are_recovered(ict_model, synthetic_views):
    from invertavatar.detect import make_detector
    from invertavatar.track import Tracker

    tracker = Tracker(ict_model)
    jaw = ARKIT_NAMES.index("jawOpen")
    errors = []
    with make_detector("mediapipe") as detector:
        for path, view in synthetic_views:
            detection = detector.detect(view.image, path.name)
            fit = tracker.add_frame(detection, view.image.shape[:2])
            truth = ict_model.arkit.to_arkit @ view.expression / np.maximum(ict_model.arkit.to_arkit.sum(1), 1)
            errors.append(np.abs(fit.arkit - truth)[ict_model.arkit.available].mean())
            if view.expression[ict_model.expression_names.index("jawOpen")] > 0:
                # An open jaw is read as open, and as far as the detector reads it: on the 0.35 view (turned 26°)
                # MediaPipe itself scores 0.15-0.16, and the fit 0.14-0.15 with the eyelid rows of either table.
                assert fit.arkit[jaw] > max(0.1, 0.8 * detection.blendshapes[jaw])
    print("mean ARKit weight error per view:", np.round(errors, 3))
    # 0.058 with the old texture (hair and suit baked into the skin), 0.060-0.066 with skin-only ones: the views
    # are rendered from the astronaut's reconstructed texture, and MediaPipe reads those faces a little
    # differently (most in the two 43° profiles); the fit itself is unchanged.
    assert np.mean(errors) < 0.07
