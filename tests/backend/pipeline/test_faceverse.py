"""FaceVerse end to end on a synthetic FaceVerse-v3.1-format file: reconstruct, refine, the bundle's layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
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


# ----------------------------------------------------------------------------------------- neural mode
def _checkpoints(folder, official: bool):
    """Tiny random prior + encoders; ``official`` marks the prior as converted from the official release."""
    import torch

    from invertavatar.neural.checkpoints import save_prior
    from invertavatar.neural.config import tiny_config
    from invertavatar.neural.inversion.checkpoints import save_encoders
    from invertavatar.neural.inversion.config import tiny_encoder_config
    from invertavatar.neural.inversion.model import InversionNet
    from invertavatar.neural.prior.generator import Next3DGenerator

    torch.manual_seed(0)
    generator = Next3DGenerator(tiny_config())
    save_prior(folder / "prior.safetensors", generator, {"source": "ani3dgan512.pkl"} if official else None)
    save_encoders(folder / "encoders.safetensors", InversionNet(generator, tiny_encoder_config()))


@pytest.mark.parametrize("official, head_model, names", [
    (True, "ict", "faceverse_v3_1.npy"), (False, "faceverse", "--head-model ict")])
def test_neural_mode_refuses_a_prior_of_the_other_head_model(faceverse_file, faceverse_bundle, tmp_path,
                                                             monkeypatch, official, head_model, names):
    from invertavatar.errors import InvertAvatarError

    _checkpoints(tmp_path, official)
    monkeypatch.setenv("INVERTAVATAR_CHECKPOINTS", str(tmp_path))
    with pytest.raises(InvertAvatarError) as info:
        run_job(JobSpec([faceverse_bundle[1]], tmp_path / "n.avatar", mode="neural", head_model=head_model,
                        texture_size=TEXTURE_SIZE))
    assert info.value.code == "neural_head_model_mismatch"
    assert names in info.value.message + info.value.hint
    assert not (tmp_path / "n.avatar").exists()


def test_official_prior_with_faceverse_needs_the_side_files_then_runs(faceverse_file, faceverse_bundle, tmp_path,
                                                                      monkeypatch):
    from invertavatar.errors import InvertAvatarError
    from invertavatar.pipeline.neural_stage import STATE_FILE

    _checkpoints(tmp_path, official=True)
    monkeypatch.setenv("INVERTAVATAR_CHECKPOINTS", str(tmp_path))
    spec = JobSpec([faceverse_bundle[1]], tmp_path / "n.avatar", mode="neural", head_model="faceverse",
                   texture_size=TEXTURE_SIZE)
    with pytest.raises(InvertAvatarError, match="fv2fl_30.npy"):
        run_job(spec)
    # Stand-ins with the documented layout: fv2fl (scale 0.0867, y and z flipped, small shift), a per-vertex mask.
    fv2fl = np.diag([0.0867, -0.0867, -0.0867, 1.0])
    fv2fl[:3, 3] = (-0.00057, -0.0179, -0.0589)
    n = len(np.load(faceverse_file, allow_pickle=True).item()["uv_per_ver"])
    side = [faceverse_file.parent / "fv2fl_30.npy", faceverse_file.parent / "v31_face_mask_new.npy"]
    np.save(side[0], fv2fl)
    np.save(side[1], np.ones(n, np.float32))
    try:
        bundle = read_bundle(run_job(spec).bundle)
    finally:
        for path in side:
            path.unlink()
    assert bundle.manifest["mode"] == "neural" and bundle.manifest["metrics"]["neural_frames"] == 1
    assert STATE_FILE in bundle.state


def test_a_clip_tracks_the_arkit_jaw_through_the_fitted_map(faceverse_file, faceverse_bundle, tmp_path, clip_writer):
    from invertavatar.headmodel import ARKIT_NAMES
    from invertavatar.pipeline.synthetic import render_view
    from invertavatar.track.state import TrackerState

    model = load_head_model("faceverse")
    bundle = read_bundle(faceverse_bundle[0].bundle)
    identity = TrackerState.from_bytes(bundle.state["tracker.json"]).mean[:-1].astype(np.float32)
    jaw = ARKIT_NAMES.index("jawOpen")
    truth = [0.0, 0.2, 0.45, 0.6, 0.45, 0.2, 0.0, 0.0]

    def frames():
        for i, value in enumerate(truth):
            arkit = np.zeros(52, np.float32)
            arkit[jaw] = value
            yield render_view(model, identity, model.arkit.matrix @ arkit, (0.2 * (i / len(truth) - 0.5), 0, 0),
                              bundle.photographed, size=256).image

    clip = clip_writer(tmp_path / "jaw.mp4", frames(), fps=8)
    result = run_job(JobSpec([clip], tmp_path / "clip.avatar", head_model="faceverse", texture_size=TEXTURE_SIZE,
                             accept_any_face=True))
    tracks = read_bundle(result.bundle).tracks
    fitted = np.array([f["arkit"][jaw] for f in tracks["frames"]])
    assert len(fitted) == len(truth)
    assert np.corrcoef(fitted, truth)[0, 1] > 0.8  # the jaw read back through the map's inverse follows the truth


def test_the_official_prior_sees_the_frame_with_the_released_camera_convention(faceverse_file):
    """With the FaceVerse condition the prior gets a virtual camera with the released model's intrinsics
    (normalised focal 4.2647, principal point 0.5) looking at its camera pivot; the picture is the frame seen
    through that camera: a point projects onto the same content in the frame and in the view."""
    from invertavatar.neural.config import official_config
    from invertavatar.neural.prior.cameras import DEFAULT_FOCAL, DEFAULT_PIVOT
    from invertavatar.neural.prior.condition_faceverse import FaceverseCondition
    from invertavatar.pipeline.neural_stage import CROP, NeuralStage
    from invertavatar.render import Camera

    model = load_head_model("faceverse")
    fv2fl = np.diag([0.0867, -0.0867, -0.0867, 1.0])
    fv2fl[:3, 3] = (-0.00057, -0.0179, -0.0589)
    stage = NeuralStage.__new__(NeuralStage)  # only the view is under test: no networks
    stage.condition = FaceverseCondition(model, fv2fl, np.ones(model.n_vertices, np.float32), config=official_config())
    k = np.array([[1400.0, 0, 640], [0, 1400.0, 360], [0, 0, 1]])
    yaw = 0.25
    rotation = np.diag([1.0, -1.0, -1.0]) @ np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0],
                                                      [-np.sin(yaw), 0, np.cos(yaw)]])
    c = stage.condition
    pivot = np.linalg.solve(c.scale * c.rotation, np.asarray(DEFAULT_PIVOT) - c.offset)
    translation = np.array([0.06, -0.02, 0.6]) - rotation @ pivot  # the pivot off the frame's optical axis
    rng = np.random.default_rng(0)
    frame = (rng.uniform(0, 255, (90, 160, 3))).astype(np.uint8)
    frame = np.kron(frame, np.ones((8, 8, 1), np.uint8))  # 720 x 1280, smooth enough to compare pixels
    view, camera = stage.official_view(frame, k, rotation, translation)
    kv = camera.K.numpy()
    assert view.shape == (CROP, CROP, 3)
    assert kv[0, 0] / CROP == pytest.approx(DEFAULT_FOCAL) and kv[0, 2] / CROP == pytest.approx(0.5)
    assert np.allclose(camera.project(torch.tensor(pivot).float()[None, None])[0, 0, :2].numpy(), CROP / 2, atol=1e-2)
    full = Camera(torch.from_numpy(k).float(), torch.from_numpy(rotation).float(),
                  torch.from_numpy(translation).float(), 1280, 720)
    points = torch.from_numpy(pivot + rng.normal(0, 0.01, (40, 3))).float()[None]
    in_view = camera.project(points)[0, :, :2].numpy()
    in_frame = full.project(points)[0, :, :2].numpy()
    inside = ((in_view > 4) & (in_view < CROP - 4)).all(1) & ((in_frame > 4) & (in_frame < [1276, 716])).all(1)
    assert inside.sum() > 20
    view_px = view[in_view[inside, 1].astype(int), in_view[inside, 0].astype(int)].astype(int)
    frame_px = frame[in_frame[inside, 1].astype(int), in_frame[inside, 0].astype(int)].astype(int)
    assert np.mean(np.abs(view_px - frame_px) < 3) > 0.8  # same content (block edges may differ by a pixel)
