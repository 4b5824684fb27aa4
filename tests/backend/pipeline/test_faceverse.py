"""FaceVerse end to end on a synthetic FaceVerse-v3.1-format file: reconstruct, refine, the bundle's layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from invertavatar import paths
from invertavatar.headmodel import load_head_model
from invertavatar.headmodel.faceverse_synthetic import synthetic_faceverse_dict
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job

TEXTURE_SIZE = 128


@pytest.fixture(scope="module")
def faceverse_file(ict_model):
    """The synthetic file installed where a user puts the real one (the tests' own INVERTAVATAR_HOME)."""
    folder = paths.faceverse_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "faceverse_v3_1.npy"
    np.save(path, synthetic_faceverse_dict(ict_model), allow_pickle=True)
    load_head_model.cache_clear()
    yield path
    path.unlink()
    load_head_model.cache_clear()


@pytest.fixture(scope="module")
def faceverse_bundle(faceverse_file, astronaut, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fv")
    photo = folder / "astronaut.png"
    Image.fromarray(astronaut).resize((256, 256)).save(photo)
    result = run_job(JobSpec([photo], folder / "fv.avatar", head_model="faceverse", texture_size=TEXTURE_SIZE))
    return result, photo


def test_reconstruct_gives_the_files_topology_and_its_uv_tiles(faceverse_file, faceverse_bundle):
    result, _ = faceverse_bundle
    bundle = read_bundle(result.bundle)
    model = load_head_model("faceverse")
    raw = np.load(faceverse_file, allow_pickle=True).item()
    assert bundle.manifest["head_model"]["id"].startswith("faceverse")
    assert bundle.mesh["vertices"].shape == (len(raw["uv_per_ver"]), 3)
    assert np.array_equal(bundle.mesh["faces"][:, :3], raw["tri"])  # the file's own triangles
    assert bundle.manifest["metrics"]["landmark_error_iod_mean"] < 0.06
    # 52 ARKit keys through the fitted transfer; the synthetic basis' left-out shapes are listed, not invented.
    assert len(bundle.mesh["expression_names"]) == 52 and bundle.mesh["expression_available"].sum() == 48
    assert {"cheekPuff", "noseSneerLeft", "noseSneerRight", "tongueOut"} <= set(
        bundle.manifest["arkit"]["missing"])
    assert bundle.mesh["expression_deltas"][bundle.mesh["expression_available"]].any(axis=(1, 2)).all()
    # Every triangle lies on one of the model-derived tiles, and the face tile holds the face's texels.
    assert set(np.unique(model.face_material)) == set(range(len(model.material_names)))
    assert bundle.manifest["metrics"]["coverage_face"] > 0.2
    half = bundle.albedo.shape[0] // 2
    face_tile = bundle.albedo[:half, :half].astype(float)  # atlas top-left: the photo's face, not a flat fill
    assert face_tile.std() > 8.0


def test_refine_continues_a_faceverse_bundle(faceverse_bundle, tmp_path):
    result, photo = faceverse_bundle
    flipped = tmp_path / "flipped.png"
    Image.open(photo).transpose(Image.FLIP_LEFT_RIGHT).save(flipped)
    refined = run_job(JobSpec([flipped], tmp_path / "refined.avatar", refine=result.bundle, head_model="faceverse",
                              texture_size=TEXTURE_SIZE))
    before, after = read_bundle(result.bundle), read_bundle(refined.bundle)
    assert after.manifest["frames"]["used"] == 2
    assert after.manifest["coverage"] >= before.manifest["coverage"]


def test_a_file_with_no_sensible_head_size_is_refused(ict_model, tmp_path):
    from invertavatar.errors import InvertAvatarError
    from invertavatar.headmodel.faceverse import load_faceverse

    raw = synthetic_faceverse_dict(ict_model)
    raw["meanshape"] = raw["meanshape"] * 3.0  # eyeballs 19 cm apart in cm, 1.9 cm in mm...: no unit fits
    path = tmp_path / "faceverse_v3_1.npy"
    np.save(path, raw, allow_pickle=True)
    with pytest.raises(InvertAvatarError) as info:
        load_faceverse(path)
    assert info.value.code == "faceverse_units" and "inter-ocular" in info.value.message
