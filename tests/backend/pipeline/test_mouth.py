"""The mouth's colours: a synthetic face with an open mouth (ivory teeth above a dark red tongue, the throat's black
between, red lips around) gives back the painted colours relative to its skin, whatever the exposure; a closed mouth
gives nothing (the bake's defaults); the sums survive the saved state; the bake paints them into the mouth tiles."""

from __future__ import annotations

import cv2
import numpy as np
from invertavatar.detect import Detection
from invertavatar.pipeline.mouth import INNER_LIPS, INTERIOR_LUMINANCE, MouthColour, mouth_opening
from invertavatar.texture.albedo_level import LUMINANCE, linear_to_srgb, srgb_to_linear
from invertavatar.texture.bake import DEFAULT_GUMS, DEFAULT_TEETH, procedural_tiles

SKIN, TEETH, TONGUE, LIPS = (200, 150, 130), (232, 224, 206), (125, 42, 48), (170, 70, 75)
CENTRE, HALF_WIDTH = (160, 170), 50


def _face(gap: float, exposure: float = 1.0) -> tuple[np.ndarray, Detection]:
    """A skin-coloured face with a mouth whose inner lips are ``gap`` pixels apart at the middle; the whole picture
    scaled by ``exposure`` in linear light."""
    image = np.full((260, 320, 3), (40, 60, 90), np.uint8)  # a blue background outside the face
    cv2.ellipse(image, (160, 130), (110, 125), 0, 0, 360, SKIN, -1)
    cx, cy = CENTRE
    cv2.ellipse(image, (cx, cy), (HALF_WIDTH + 12, int(gap / 2) + 12), 0, 0, 360, LIPS, -1)
    if gap > 2:
        cv2.ellipse(image, (cx, cy), (HALF_WIDTH, int(gap / 2)), 0, 0, 360, TONGUE, -1)
        cv2.rectangle(image, (cx - 40, cy - int(gap / 2)), (cx + 40, cy - int(gap / 8)), TEETH, -1)  # upper teeth
        cv2.rectangle(image, (cx - 40, cy - int(gap / 8)), (cx + 40, cy), (8, 4, 4), -1)  # the throat's black
    landmarks = np.zeros((478, 2), np.float32)
    angles = np.linspace(0, 2 * np.pi, 478, endpoint=False)
    landmarks[:] = np.stack([160 + 105 * np.cos(angles), 130 + 120 * np.sin(angles)], 1)  # the face's hull
    # The inner lips: the contour runs from the right corner (image left) over the upper lip and back below.
    t = np.linspace(np.pi, 0, 11)
    upper = np.stack([cx + HALF_WIDTH * np.cos(t), cy - gap / 2 * np.sin(t)], 1)
    lower = np.stack([cx + HALF_WIDTH * np.cos(t[1:-1]), cy + gap / 2 * np.sin(t[1:-1])], 1)[::-1]
    landmarks[INNER_LIPS] = np.concatenate([upper, lower])
    if exposure != 1.0:
        image = (linear_to_srgb(srgb_to_linear(image / 255.0) * exposure) * 255 + 0.5).astype(np.uint8)
    detection = Detection(box=np.array([50, 5, 270, 255], np.float32), landmarks=landmarks, landmarks_z=None,
                          scheme="mediapipe478", blendshapes=None, head_pose=None, faces_found=1)
    return image, detection


def _srgb(colour) -> np.ndarray:
    return np.array(colour, np.float64) / 255.0


def test_open_mouth_gives_the_painted_teeth_and_interior():
    image, detection = _face(gap=44)
    assert mouth_opening(detection.landmarks) > 0.4
    mouth = MouthColour()
    mouth.add(image, detection)
    assert mouth.counts == {"teeth": 1, "interior": 1}
    colours = mouth.colours(_srgb(SKIN))  # the skin's albedo as it was photographed: the mouth comes back as painted
    np.testing.assert_allclose(colours["teeth"], _srgb(TEETH), atol=0.03)
    np.testing.assert_allclose(colours["gums"], _srgb(TONGUE), atol=0.03)
    # A darker skin albedo (the same photo, the skin put at a darker level) gives a darker interior, down to the
    # interior's floor (a deep red), never below it.
    darker = mouth.colours(_srgb(SKIN) * 0.7)
    y = lambda c: float(srgb_to_linear(c) @ LUMINANCE)  # noqa: E731
    assert y(darker["gums"]) < 0.8 * y(colours["gums"]) and y(darker["gums"]) >= INTERIOR_LUMINANCE[0] - 1e-3


def test_the_exposure_does_not_change_the_mouth():
    bright, dim = MouthColour(), MouthColour()
    bright.add(*_face(gap=44, exposure=1.2))
    dim.add(*_face(gap=44, exposure=0.5))
    skin = _srgb(SKIN)
    for kind in ("teeth", "gums"):
        np.testing.assert_allclose(bright.colours(skin)[kind], dim.colours(skin)[kind], atol=0.04)


def test_closed_mouth_measures_nothing_and_the_bake_keeps_its_defaults(ict_model):
    image, detection = _face(gap=1)
    assert mouth_opening(detection.landmarks) < 0.05
    mouth = MouthColour()
    mouth.add(image, detection)
    assert mouth.counts == {"teeth": 0, "interior": 0} and mouth.colours(_srgb(SKIN)) == {}
    tiles = procedural_tiles(ict_model, 32, _srgb(SKIN), np.array([0.35, 0.25, 0.18], np.float32),
                             mouth=mouth.colours(_srgb(SKIN)))
    np.testing.assert_allclose(tiles["teeth"].mean((0, 1)), DEFAULT_TEETH * 0.975, atol=0.01)
    np.testing.assert_allclose(tiles["gums"].mean((0, 1)), DEFAULT_GUMS * 0.975, atol=0.01)


def test_the_sums_accumulate_through_the_saved_state_and_reach_the_tiles(ict_model):
    mouth = MouthColour()
    mouth.add(*_face(gap=44))
    again = MouthColour.from_bytes(mouth.to_bytes())
    again.add(*_face(gap=1))  # a closed keyframe adds nothing
    again.add(*_face(gap=44, exposure=0.8))
    assert again.counts == {"teeth": 2, "interior": 2}
    colours = again.colours(_srgb(SKIN))
    np.testing.assert_allclose(colours["teeth"], _srgb(TEETH), atol=0.04)
    tiles = procedural_tiles(ict_model, 32, _srgb(SKIN), np.array([0.35, 0.25, 0.18], np.float32), mouth=colours)
    # The tiles carry the measured colours under the bake's vertical gradient (0.9 to 1.05, 0.975 on average).
    np.testing.assert_allclose(tiles["teeth"].mean((0, 1)), colours["teeth"] * 0.975, atol=0.01)
    np.testing.assert_allclose(tiles["gums"].mean((0, 1)), colours["gums"] * 0.975, atol=0.01)
    assert np.abs(tiles["gums"].mean((0, 1)) - DEFAULT_GUMS * 0.975).max() > 0.05  # not the default's red


def test_lips_and_throat_stay_out():
    from invertavatar.pipeline.mouth import mouth_pixels
    from invertavatar.texture.albedo_level import linear_to_lab

    image, detection = _face(gap=44)
    teeth, interior = mouth_pixels(image, detection.landmarks)
    assert len(teeth) > 100 and len(interior) > 100
    lab = linear_to_lab(interior)
    assert lab[:, 0].min() > 8.0  # the throat's black is not the interior
    lips = linear_to_lab(srgb_to_linear(_srgb(LIPS)))
    assert np.abs(lab - lips).max(1).min() > 3.0  # no pixel of the lips' red came in
