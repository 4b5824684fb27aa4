"""The neural bake: views around the head through the photos' texture fusion into neural_baked.png."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from invertavatar.errors import InvertAvatarError
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline.neural_bake import BAKE_VIEWS, bake_bundle
from invertavatar.texture.atlas import SLOTS, slot_pixels


@pytest.fixture(scope="module")
def baked(neural_setup, tmp_path_factory):
    _, _, neural = neural_setup
    target = tmp_path_factory.mktemp("bake") / "baked.avatar"
    stages = []
    manifest = bake_bundle(neural, target, progress=lambda s, f, m: stages.append((s, f, m)))
    return read_bundle(target), manifest, stages


def test_bake_writes_the_neural_texture_in_the_albedo_layout(baked, neural_setup):
    bundle, manifest, stages = baked
    assert bundle.neural_baked is not None and bundle.neural_baked.shape == bundle.albedo.shape
    assert "textures/neural_baked.png" in bundle.manifest["files"]
    figures = manifest["neural_bake"]
    assert figures["views"] == [name for name, _, _ in BAKE_VIEWS] and figures["render_size"] == 64
    # The views around the head reach the back of the head, which the one-photo inversion never saw.
    assert figures["coverage_face"] > 0.5 and figures["coverage_back_head"] > 0.3 and 0 < figures["coverage"] <= 1
    assert [s for s, _, _ in stages].count("neural") == len(BAKE_VIEWS)
    original = read_bundle(neural_setup[2])
    assert bundle.state == original.state and np.array_equal(bundle.albedo, original.albedo)


def test_baked_colours_come_from_the_neural_renders(baked, neural_setup):
    from invertavatar.renderers import render

    bundle, _, _ = baked
    front = render(bundle, "neural", size=(64, 64)).image.reshape(-1, 3).astype(float)
    rows, cols = slot_pixels(SLOTS["face"], bundle.neural_baked.shape[0])
    face = bundle.neural_baked[rows, cols].reshape(-1, 3).astype(float)
    photo_face = bundle.albedo[rows, cols].reshape(-1, 3).astype(float)
    # The random prior paints everything green-ish; the photo texture of the fixture is skin-coloured.
    assert np.abs(np.median(face, 0) - np.median(front, 0)).max() < 40
    assert np.abs(np.median(face, 0) - np.median(photo_face, 0)).max() > 40


def test_a_fit_only_avatar_cannot_be_baked(neural_setup, tmp_path):
    _, fit, _ = neural_setup
    with pytest.raises(InvertAvatarError) as info:
        bake_bundle(fit, tmp_path / "x.avatar")
    assert info.value.code == "no_neural_state"
    assert not (tmp_path / "x.avatar").exists()


def test_bake_in_place_and_cancel(neural_setup, tmp_path):
    import threading

    from invertavatar.errors import CancelledError

    copy = tmp_path / "copy.avatar"
    shutil.copytree(neural_setup[2], copy)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        bake_bundle(copy, cancel=cancel)
    assert read_bundle(copy).neural_baked is None  # untouched
    bake_bundle(copy)
    assert read_bundle(copy).neural_baked is not None


@pytest.mark.slow  # a whole neural job (tests/backend/pipeline/test_neural_mode.py runs the same path by default)
def test_a_neural_job_bakes_its_texture(neural_setup, synthetic_views, tmp_path):
    from invertavatar.pipeline import JobSpec, run_job

    stages = []
    result = run_job(JobSpec([synthetic_views[0][0]], tmp_path / "n.avatar", mode="neural", texture_size=128),
                     progress=lambda s, f, m: stages.append((s, f)))
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions)  # the bake's views advance the job's bar, never back
    bundle = read_bundle(result.bundle)
    assert bundle.neural_baked is not None and bundle.neural_baked.shape == bundle.albedo.shape
    assert bundle.manifest["neural_bake"]["coverage_back_head"] > 0.3
