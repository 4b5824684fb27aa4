"""End to end with known answers (issue 22): the synthetic ICT head of the pipeline tests rendered with a known
groom of known colour, reconstructed by the real job, and its hair compared with the known groom in views the job
never saw; the same head rendered bald gets no hair.

The head: ``conftest.ground_truth``'s identity, the astronaut's baked atlas with the cranium repainted in the
default bald-scalp tone (``pipeline.synthetic.bald_albedo``), unshaded, on the renders' flat grey background. The
groom: ``render.synthetic_hair.synthetic_groom`` (300 combed-back guides, 16 cm, down to the nape) coloured
``KNOWN_ROOT`` (linear dark brown, sRGB ≈ (63, 48, 39)) root to tip, drawn by the preview's strand renderer
(``render_view(hair=...)``). MediaPipe's selfie segmenter takes these bare heads for a person as they are (no torso
or textured background needed): its mask covers head, hair and neck in every input view, so the job runs untouched,
through its own segmenter — no test seam.

Held-out views are scored like backend/benchmarks/bench_hair.py: the known groom and the recovered hair are each
drawn on their own head by the preview (``render.hair.hair_masks``) through the same camera, and their hair masks
compared. Measured (256 px, inputs at yaw −40…40°): hair IoU 0.457 / 0.505 / 0.499 / 0.450 / 0.650 at yaw
−60 / −30 / 30 / 60 / 180°. What is lost is the groom's fall behind the head: the guides grow down under gravity
while the known groom is combed back and out, so beside and behind the head the recovered hair is a shell about the
cranium. Before the hair zone followed the head's yaw (hair/region.py: the zone is also drawn about the cranium's
centre) the turned inputs cut that hair off at the face-centred zone's edge and the same views gave 0.40 / 0.43 /
0.43 / 0.39 / 0.37; the bounds below fail that. The de-lit root colour came back at ΔE00 0.74 from the known one;
the Principled Hair parameters' own colour (``parameter_colour``: the melanin fit, no tint) at 7.8 with the fit of
commit 1fb1e3c and 1.6 with the colour calibration being written into hair/colour.py beside this test; the bound
(10) holds for both and still fails a fit that turns the brown into a black, a blonde or a red.
"""

from __future__ import annotations

import numpy as np
import pytest
from invertavatar.hair.colour import linear_to_srgb, parameter_colour
from invertavatar.io.bundle import Bundle, read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.avatar_mesh import mesh_arrays
from invertavatar.pipeline.synthetic import bald_albedo, render_view, view_camera
from invertavatar.render.hair import hair_masks
from invertavatar.render.synthetic_hair import synthetic_groom, synthetic_hair_params
from PIL import Image

SIZE = 256
INPUT_YAWS = (-40, -20, 0, 20, 40)  # degrees
BALD_YAWS = (-20, 0, 20)
HELD_OUT_YAWS = (-60, -30, 30, 60, 180)
KNOWN_ROOT = (0.05, 0.03, 0.02)  # linear RGB albedo of the groom
TEXTURE_SIZE = 512


def _lab(linear) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(linear_to_srgb(np.clip(np.asarray(linear, np.float64), 0, 1)).reshape(1, 1, 3))[0, 0]


def delta_e00(linear_a, linear_b) -> float:
    from skimage.color import deltaE_ciede2000

    return float(deltaE_ciede2000(_lab(linear_a), _lab(linear_b)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def head(ict_model, ground_truth, known_albedo):
    identity = ground_truth["identity"]
    mesh = mesh_arrays(ict_model, identity)
    albedo = bald_albedo(ict_model, known_albedo)
    groom = synthetic_groom(mesh, guides=300, seed=0)
    params = synthetic_hair_params(root_colour=KNOWN_ROOT, tip=False)
    truth = Bundle(manifest={}, mesh=mesh, albedo=albedo, coverage=np.zeros(albedo.shape[:2], np.uint8),
                   hair=groom, hair_params=params)
    return {"identity": identity, "albedo": albedo, "groom": groom, "params": params, "truth": truth}


def reconstruct(model, head, folder, hair: bool):
    expression = np.zeros(model.n_expression, np.float32)
    paths = []
    for yaw in INPUT_YAWS if hair else BALD_YAWS:
        view = render_view(model, head["identity"], expression, (np.radians(yaw), 0.0, 0.0), head["albedo"],
                           size=SIZE, shading=False, hair=(head["groom"], head["params"]) if hair else None)
        paths.append(folder / f"yaw{yaw:+d}.png")
        Image.fromarray(view.image).save(paths[-1])
    output = folder / ("haired.avatar" if hair else "bald.avatar")
    # Renders are not photos: the human-face check (tested on its own) is not the subject here.
    result = run_job(JobSpec(paths, output, texture_size=TEXTURE_SIZE, accept_any_face=True))
    return result, read_bundle(output)


@pytest.fixture(scope="module")
def haired(ict_model, head, tmp_path_factory):
    return reconstruct(ict_model, head, tmp_path_factory.mktemp("synthetic_haired"), hair=True)


@pytest.fixture(scope="module")
def bald(ict_model, head, tmp_path_factory):
    return reconstruct(ict_model, head, tmp_path_factory.mktemp("synthetic_bald"), hair=False)


def test_the_known_groom_is_found_from_every_view(haired):
    result, bundle = haired
    hair = result.manifest["hair"]
    assert hair["found"] is True and hair["groups"] == ["scalp"], hair  # no beard was drawn, none is found
    assert hair["keyframes"] == len(INPUT_YAWS) and hair["bald_keyframes"] == 0, hair
    assert bundle.hair is not None and (bundle.hair["group"] == 0).all()


def test_recovered_hair_matches_the_known_groom_in_held_out_views(haired, head):
    _, bundle = haired
    scores = {}
    for yaw in HELD_OUT_YAWS:
        camera = view_camera((np.radians(yaw), 0.0, 0.0), SIZE)
        truth = hair_masks(head["truth"], camera)[1]
        recovered = hair_masks(bundle, camera)[1]
        scores[yaw] = round(iou(truth, recovered), 3)
    print("held-out hair IoU by yaw:", scores)
    # Measured 0.450-0.505 beside the head, 0.650 behind it; 0.39-0.43 and 0.37 without the yaw-following zone.
    assert min(scores.values()) > 0.42, scores
    assert scores[180] > 0.55, scores


def test_fitted_colour_is_the_known_colour(haired):
    _, bundle = haired
    scalp = bundle.hair_params["groups"]["scalp"]
    measured = delta_e00(scalp["root_colour"], KNOWN_ROOT)
    shader = delta_e00(parameter_colour(scalp), KNOWN_ROOT)
    print("root colour", scalp["root_colour"], "ΔE00", measured, "parameters' colour ΔE00", shader)
    # Measured 0.74 (the unshaded strands' ±8 % brightness jitter and their edges against the scalp); 3 is about
    # what a viewer notices side by side. The parameters' colour: how close the melanin fit gets (7.8, or 1.6 with
    # the calibrated fit; see the module docstring).
    assert measured < 3.0, (scalp["root_colour"], measured)
    assert shader < 10.0, (parameter_colour(scalp), shader)
    assert np.allclose(scalp["tint"], 1.0)  # brown is melanin's colour, not a dye


def test_the_same_head_bald_gets_no_hair(bald):
    result, bundle = bald
    assert result.manifest["hair"]["found"] is False, result.manifest["hair"]
    assert result.manifest["hair"]["bald_keyframes"] == len(BALD_YAWS)
    assert bundle.hair is None and bundle.hair_params is None
    assert not (result.bundle / "hair").exists()
