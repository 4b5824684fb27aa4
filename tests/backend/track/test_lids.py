"""The eyelid refit (track/lids.py) on renders of a known head, and its parametrisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.track import Tracker
from invertavatar.track.lids import YAW_NONE, _unknowns, _with, head_yaw, lid_problem
from invertavatar.track.tracker import TrackerConfig


def expression_of(model, **weights: float) -> np.ndarray:
    expression = np.zeros(model.n_expression, np.float32)
    for name, value in weights.items():
        expression[model.expression_names.index(name)] = value
    return expression


def lid_errors(model, fitted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean error of the upper lid's signed opening (wide − blink) and of the lower lid's squint, both eyes."""
    name = model.expression_names.index
    upper = [abs((fitted[name(f"eyeWide{s}")] - fitted[name(f"eyeBlink{s}")])
                 - (truth[name(f"eyeWide{s}")] - truth[name(f"eyeBlink{s}")])) for s in ("_L", "_R")]
    lower = [abs(fitted[name(f"eyeSquint{s}")] - truth[name(f"eyeSquint{s}")]) for s in ("_L", "_R")]
    return float(np.mean(upper)), float(np.mean(lower))


@pytest.fixture(scope="module")
def detector():
    from invertavatar.detect import make_detector

    with make_detector("mediapipe") as made:
        yield made


def test_wide_open_lids_are_refitted_towards_the_truth(ict_model, ground_truth, known_albedo, detector):
    """Eyes opened wide on a near-frontal render: the whole-face fit leaves the upper lid where the other 436
    landmarks put it (the avatar's eyes read smaller than the person's); the refit opens it closer to the truth."""
    from invertavatar.pipeline.synthetic import render_view

    truth = expression_of(ict_model, eyeWide_L=0.5, eyeWide_R=0.5)
    view = render_view(ict_model, ground_truth["identity"], truth, (0.1, 0.05, 0.0), known_albedo, shading=False)
    detection = detector.detect(view.image, "wide open")
    errors = {}
    for refit in (False, True):
        fit = Tracker(ict_model, config=TrackerConfig(fit_lids=refit)).add_frame(detection, view.image.shape[:2])
        errors[refit] = lid_errors(ict_model, fit.expression, truth)
    print("upper / lower lid error, whole-face fit", np.round(errors[False], 3), "refit", np.round(errors[True], 3))
    # Measured: upper lid 0.50 → 0.35 (another identity: 0.57 → 0.45). The lower lid and neutral or half-closed
    # lids do not improve on renders (docs/how-it-works.md, "Eyes"): the gain measured on photos is the closed loop
    # of backend/benchmarks/bench_lids.py.
    assert errors[True][0] < errors[False][0] - 0.1


def test_a_turned_head_keeps_the_whole_face_fit(ict_model, ground_truth, known_albedo, detector):
    """Turned past `YAW_NONE`, the far eye's lid points are guesses: the refit leaves the fit alone."""
    from invertavatar.pipeline.synthetic import render_view

    yaw = np.radians(YAW_NONE + 8)
    view = render_view(ict_model, ground_truth["identity"], expression_of(ict_model), (yaw, 0.0, 0.0), known_albedo)
    detection = detector.detect(view.image, "turned")
    fits = [Tracker(ict_model, config=TrackerConfig(fit_lids=refit)).add_frame(detection, view.image.shape[:2])
            for refit in (False, True)]
    np.testing.assert_allclose(fits[1].expression, fits[0].expression, atol=1e-6)


def test_head_yaw_reads_the_turn():
    for degrees in (0.0, 20.0, -43.0):
        assert head_yaw(torch.tensor([0.0, np.radians(degrees), 0.0])) == pytest.approx(degrees, abs=1e-6)
    assert head_yaw(torch.tensor([0.3, 0.0, 0.0])) == pytest.approx(0.0, abs=1e-6)  # a nod is not a turn


def test_the_upper_lid_is_one_signed_opening(ict_model):
    """Blink and wide move the same points opposite ways: the refit never sets both."""
    _, eyes = lid_problem(ict_model)
    local = torch.zeros(6 + ict_model.n_expression)
    both = _with(local, eyes, np.array([0.4, 0.2, -0.7, 0.9]))
    name = ict_model.expression_names.index
    values = {n: float(both[6 + name(n)]) for n in ("eyeWide_L", "eyeBlink_L", "eyeSquint_L", "eyeWide_R",
                                                     "eyeBlink_R", "eyeSquint_R")}
    assert values == pytest.approx({"eyeWide_L": 0.4, "eyeBlink_L": 0.0, "eyeSquint_L": 0.2, "eyeWide_R": 0.0,
                                    "eyeBlink_R": 0.7, "eyeSquint_R": 0.9})
    np.testing.assert_allclose(_unknowns(both[6:], eyes), [0.4, 0.2, -0.7, 0.9], atol=1e-6)


def test_a_model_without_lid_shapes_is_left_alone(ict_model):
    from dataclasses import replace

    from invertavatar.track.lids import fit_lids

    plain = replace(ict_model, expression_names=[f"e{i}" for i in range(ict_model.n_expression)])
    local = torch.rand(6 + ict_model.n_expression)
    assert lid_problem(plain) is None
    assert fit_lids(None, plain, "mediapipe478", torch.zeros(1), local) is local


def test_a_closed_eye_is_fitted_closed(ict_model):
    """A detector draws a closed eye as its two contours meeting. ICT's blink carries the upper margin past the lower
    lid, so fitted on the margin points a closed eye came out as a half blink; the refit's upper lid moves onto the
    lower lid as it closes (`_visible`). Landmarks: the mean head's with its left eye blinked (the blink also moves
    the lower lid), projected frontally, the upper contour of that eye laid on its lower contour."""
    from invertavatar.detect import Detection
    from invertavatar.detect.landmark_schemes import LEFT_EYE_CONTOUR, lid_pairs
    from invertavatar.track.correspondence import correspondence_for, landmark_basis, landmark_points
    from invertavatar.track.tracker import FLIP

    model, size, focal = ict_model, 512, 900.0
    corr = correspondence_for(model, "mediapipe478")
    basis = landmark_basis(model, corr, "cpu")
    name = model.expression_names.index
    blinked = torch.zeros(1, model.n_expression)
    blinked[0, name("eyeBlink_L")] = 1.0
    points = landmark_points(basis, torch.zeros(1, model.n_identity), blinked)[0]
    cam = points.numpy() @ FLIP.numpy().T + [0.0, 0.0, 0.6]
    landmarks = np.zeros((478, 2), np.float32)
    landmarks[corr.landmark_ids] = focal * cam[:, :2] / cam[:, 2:] + size / 2 - 0.5
    for upper, lower in lid_pairs(LEFT_EYE_CONTOUR):
        landmarks[upper] = landmarks[lower]
    detection = Detection(np.array([0, 0, size, size], np.float32), landmarks, None, "mediapipe478", None, None, 1)
    fit = Tracker(model).add_frame(detection, (size, size))
    # Measured 0.93; fitted on the margin points as before, 0.84.
    print("closed eye fitted as", fit.expression[name("eyeBlink_L")])
    assert fit.expression[name("eyeBlink_L")] > 0.9, fit.expression[name("eyeBlink_L")]
    assert fit.expression[name("eyeBlink_R")] < 0.2  # the other eye stays open
