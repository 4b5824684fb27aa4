"""The human-face check: people (photos, tilted, renders of the head model) are human; the same landmarks on a cat
or a coffee cup are not; flat-colour and toned-monochrome faces are artworks; a few devset pictures when present."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from invertavatar.detect.human_check import (ARTWORK, FLAT_COLOUR_SHARE, HUMAN, HUMAN_MIN_VOTES, NOT_HUMAN,
                                             HumanFaceCheck, artwork_cues, upright_face)

DEVSET = Path(__file__).resolve().parents[3].parent / "shared" / "devset" / "photos"


@pytest.fixture(scope="module")
def check() -> HumanFaceCheck:
    return HumanFaceCheck()


@pytest.fixture(scope="module")
def astronaut_face(detector, astronaut):
    return detector.detect(astronaut, "astronaut")


def test_photos_of_people_are_human(check, detector, astronaut, grace_hopper, astronaut_face):
    for image, detection in ((astronaut, astronaut_face), (grace_hopper, detector.detect(grace_hopper, "grace"))):
        verdict = check.check(image, detection, full=True)
        assert verdict.kind == HUMAN and verdict.is_human
        assert verdict.votes >= 5 * HUMAN_MIN_VOTES  # far from the threshold, not just over it


def test_a_tilted_face_is_cut_out_upright(check, detector, astronaut):
    turn = cv2.getRotationMatrix2D((256, 256), 30, 1.0)
    tilted = cv2.warpAffine(astronaut, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    detection = detector.detect(tilted, "tilted")
    crop, points = upright_face(tilted, detection)
    right, left = points[33], points[263]
    assert abs(right[1] - left[1]) < 0.05 * abs(left[0] - right[0])  # the eye line is level in the crop
    assert check.check(tilted, detection).kind == HUMAN


@pytest.mark.parametrize("picture", ["chelsea", "coffee"])
def test_face_landmarks_on_a_cat_or_a_cup_are_not_human(check, astronaut_face, picture):
    """What the landmarker does on some animals: a human mesh on a non-human picture. The cascades see no face."""
    image = cv2.resize(getattr(data, picture)(), (512, 512), interpolation=cv2.INTER_AREA)
    box = astronaut_face.box
    target = {"chelsea": (170.0, 60.0, 360.0, 300.0), "coffee": (140.0, 120.0, 380.0, 360.0)}[picture]
    scale = (target[2] - target[0]) / (box[2] - box[0])
    moved = (astronaut_face.landmarks - box[:2]) * scale + np.array(target[:2], np.float32)
    detection = replace(astronaut_face, landmarks=moved.astype(np.float32), source=picture)
    verdict = check.check(image, detection, full=True)
    assert verdict.kind == NOT_HUMAN and not verdict.is_human
    assert verdict.votes < HUMAN_MIN_VOTES and "human-face detector" in verdict.reason


def test_renders_of_the_head_model_are_human(check, detector, ict_model):
    """Decision: a render of the ICT head is a human face even without a photo texture: never refused."""
    from invertavatar.pipeline.synthetic import render_view

    albedo = np.empty((512, 512, 3), np.uint8)
    albedo[:] = (200, 160, 140)
    identity = np.zeros(ict_model.n_identity, np.float32)
    expression = np.zeros(ict_model.n_expression, np.float32)
    for yaw in (0.0, 0.6):
        view = render_view(ict_model, identity, expression, (yaw, 0.0, 0.0), albedo, size=384, shading=True)
        verdict = check.check(view.image, detector.detect(view.image, f"render yaw {yaw}"))
        assert verdict.is_human, verdict


def test_flat_colour_faces_are_drawn(astronaut, astronaut_face):
    crop, points = upright_face(astronaut, astronaut_face)
    assert artwork_cues(crop, points)["flat_colour_share"] < FLAT_COLOUR_SHARE
    flat = np.empty_like(crop)
    flat[:] = (230, 190, 160)
    assert artwork_cues(flat, points)["flat_colour_share"] > FLAT_COLOUR_SHARE


def test_toned_monochrome_is_an_artwork_and_grey_is_a_photo(check, astronaut, astronaut_face):
    grey = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert check.check(grey, astronaut_face).kind == HUMAN  # a black-and-white photo is a photo
    toned = np.clip(grey.astype(np.float32) * np.array([1.0, 0.98, 0.95]), 0, 255).astype(np.uint8)  # bronze-ish
    verdict = check.check(toned, astronaut_face)
    assert verdict.kind == ARTWORK and "grey" in verdict.reason


DEVSET_CASES = [("animal", "sam_dog.jpg", NOT_HUMAN), ("animal", "dlib_dogs.jpg", NOT_HUMAN),
                ("animal", "mmpretrain_cat_dog.png", NOT_HUMAN), ("art", "echomimic_e.png", ARTWORK),
                ("art", "hallo_ref_5.jpg", ARTWORK), ("human", "prnet_image01038.jpg", HUMAN),
                ("human", "prnet_image00475.jpg", HUMAN), ("human", "mmpose_aflw_image22568.jpg", HUMAN)]


@pytest.mark.parametrize("folder,name,kind", DEVSET_CASES)
def test_devset_pictures(check, detector, folder, name, kind):
    """A few devset pictures, read from ../shared at test time (never copied into the repository)."""
    path = DEVSET / folder / name
    if not path.is_file():
        pytest.skip(f"the devset is not at {DEVSET}")
    from invertavatar.io.frames import open_source

    source = open_source(path)
    image = next(iter(source)).image
    source.close()
    assert check.check(image, detector.detect(image, name)).kind == kind


def test_the_evidence_rule_needs_both_signals_unless_one_is_strong():
    from invertavatar.detect.human_check import (HUMAN_MIN_SCORE, STRONG_SCORE, STRONG_VOTES,
                                                 is_human_evidence)

    assert is_human_evidence(HUMAN_MIN_VOTES, HUMAN_MIN_SCORE)
    assert not is_human_evidence(HUMAN_MIN_VOTES - 1, HUMAN_MIN_SCORE)  # a middling score needs the votes
    assert not is_human_evidence(STRONG_VOTES - 1, HUMAN_MIN_SCORE - 0.01)  # a few votes need a good score
    assert is_human_evidence(STRONG_VOTES, 0.3)
    assert is_human_evidence(1, STRONG_SCORE) and not is_human_evidence(0, 0.99)  # the cascades must not be silent
    assert is_human_evidence(HUMAN_MIN_VOTES, None) and not is_human_evidence(HUMAN_MIN_VOTES - 1, None)


def test_counting_stops_once_the_verdict_is_settled(check, detector, astronaut, astronaut_face):
    """A clip checks every frame, so the check stops counting once the votes settle the verdict: it must give the
    same verdict as counting every vote, with at least the votes the face detector's score needs."""
    from invertavatar.detect.human_check import STRONG_VOTES, votes_needed

    for score in (astronaut_face.score, 0.75, 0.5):
        face = replace(astronaut_face, score=score)
        quick, full = check.check(astronaut, face), check.check(astronaut, face, full=True)
        assert quick.kind == full.kind == HUMAN
        assert votes_needed(score) <= quick.votes <= full.votes
    assert votes_needed(0.5) == STRONG_VOTES and votes_needed(0.9) == 1
