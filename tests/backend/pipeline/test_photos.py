"""Real photos shipped in packages → bundles whose fit is accurate and whose content is complete."""

from __future__ import annotations

import numpy as np
from PIL import Image

from invertavatar.headmodel import ARKIT_NAMES
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job


def test_astronaut_bundle_is_complete_and_accurate(astronaut_result):
    result, stages = astronaut_result
    bundle = read_bundle(result.bundle)
    manifest = bundle.manifest
    assert manifest["metrics"]["landmark_error_iod_mean"] < 0.03
    assert manifest["frames"] == {"seen": 1, "used": 1, "skipped": 0}
    # Coverage counts skin seen: the skin mask keeps the astronaut's hair, suit and background out of it.
    assert 0.15 < manifest["coverage"] < 0.9 and manifest["arkit"]["missing"] == ["tongueOut"]
    mesh = bundle.mesh
    assert list(mesh["expression_names"]) == list(ARKIT_NAMES)
    assert mesh["expression_available"].sum() == 51 and not mesh["expression_deltas"][51].any()
    np.testing.assert_allclose(mesh["vertex_weights"].sum(1), 1.0, atol=1e-5)
    assert bundle.albedo.shape == (4096, 4096, 3) and bundle.coverage.shape == (4096, 4096)
    assert 0.0 <= mesh["uv"].min() and mesh["uv"].max() <= 1.0
    assert {"tracker.json", "texture_fusion.npz"} <= set(bundle.state)
    # Progress rose monotonically through the stages to 1.
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [s for s, _ in stages][-1] == "bundle"


def test_astronaut_skin_tone_is_taken_from_the_photo(astronaut_result, astronaut):
    bundle = read_bundle(astronaut_result[0].bundle)
    middle = (slice(900, 1300), slice(800, 1250))  # nose and cheeks in the face tile
    seen = bundle.coverage[middle] > 0
    texture_colour = np.median(bundle.albedo[middle][seen], axis=0)
    photo_face = np.median(astronaut[100:150, 200:240].reshape(-1, 3), axis=0)  # cheeks and nose
    assert np.abs(texture_colour - photo_face).max() < 40


def test_grace_hopper_fits_within_three_percent(tmp_path, grace_hopper):
    photo = tmp_path / "grace.jpg"
    Image.fromarray(grace_hopper).save(photo)
    result = run_job(JobSpec([photo], tmp_path / "grace.avatar", texture_size=256))
    assert result.manifest["metrics"]["landmark_error_iod_mean"] < 0.03
    assert read_bundle(result.bundle).tracks is None  # photos have no performance track
