"""The iris' pattern: measured on the polar grid of a synthetic eye (nasal half blue, temporal half brown, a catch
light, lids over the top), kept through the saved state, and painted into the eye tile by angle."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from invertavatar.detect import Detection
from invertavatar.detect.landmark_schemes import LEFT_EYE_CONTOUR, LEFT_IRIS, RIGHT_EYE_CONTOUR, RIGHT_IRIS
from invertavatar.pipeline.iris import PATTERN_RINGS, PATTERN_SECTORS, IrisColour

BLUE, BROWN = (60, 110, 200), (150, 90, 40)
RADIUS = 18.0


def _eye(image: np.ndarray, landmarks: np.ndarray, iris: np.ndarray, contour: np.ndarray, centre: tuple,
         nasal_right: bool) -> None:
    cx, cy = centre
    cv2.ellipse(image, (cx, cy), (45, 30), 0, 0, 360, (235, 230, 225), -1)  # the white of the eye
    # The nasal half blue, the temporal half brown; the nasal side of the right eye is image right.
    cv2.ellipse(image, (cx, cy), (int(RADIUS), int(RADIUS)), 0, -90, 90, BLUE if nasal_right else BROWN, -1)
    cv2.ellipse(image, (cx, cy), (int(RADIUS), int(RADIUS)), 0, 90, 270, BROWN if nasal_right else BLUE, -1)
    cv2.circle(image, (cx, cy), 6, (5, 5, 5), -1)  # pupil
    cv2.circle(image, (cx + 7, cy - 7), 3, (255, 255, 255), -1)  # the catch light
    landmarks[iris[0]] = centre
    landmarks[iris[1:]] = [(cx + RADIUS, cy), (cx, cy - RADIUS), (cx - RADIUS, cy), (cx, cy + RADIUS)]
    # Lids: the upper one low enough to cover the iris' top.
    angles = np.linspace(0, 2 * np.pi, len(contour), endpoint=False)
    landmarks[contour] = np.stack([cx + 45 * np.cos(angles),
                                   cy + np.where(np.sin(angles) < 0, 12, 26) * np.sin(angles)], 1)


@pytest.fixture(scope="module")
def synthetic_eyes():
    image = np.full((160, 320, 3), (200, 150, 130), np.uint8)
    landmarks = np.zeros((478, 2), np.float32)
    _eye(image, landmarks, RIGHT_IRIS, RIGHT_EYE_CONTOUR, (90, 80), nasal_right=True)  # subject's right: image left
    _eye(image, landmarks, LEFT_IRIS, LEFT_EYE_CONTOUR, (230, 80), nasal_right=False)
    detection = Detection(box=np.array([0, 0, 320, 160], np.float32), landmarks=landmarks, landmarks_z=None,
                          scheme="mediapipe478", blendshapes=None, head_pose=None, faces_found=1)
    return image, detection


def test_pattern_keeps_the_halves_and_drops_the_catch_light(synthetic_eyes):
    iris = IrisColour()
    iris.add(*synthetic_eyes)
    pattern = iris.pattern()
    assert pattern is not None and pattern.shape == (PATTERN_RINGS, PATTERN_SECTORS, 3)
    outer = pattern[PATTERN_RINGS // 2:]  # clear of the pupil
    sector = np.arange(PATTERN_SECTORS)
    nasal = (sector < PATTERN_SECTORS // 8) | (sector >= 7 * PATTERN_SECTORS // 8)  # angle 0 is nasal
    temporal = np.abs(sector - PATTERN_SECTORS // 2) < PATTERN_SECTORS // 8
    blue_minus_red = outer[..., 2] - outer[..., 0]
    assert blue_minus_red[:, nasal].mean() > 0.5 and blue_minus_red[:, temporal].mean() < -0.3
    assert pattern.max() < 1.8  # bounded; the white catch light did not enter
    # The upper lid hides the iris' top (angles around 90°): those sectors are filled, not left black.
    top = np.abs(sector - PATTERN_SECTORS // 4) < 3
    assert (iris.pattern_weight[:, top] == 0).any() and pattern[:, top].min() > 0.3


def test_pattern_survives_the_saved_state(synthetic_eyes):
    iris = IrisColour()
    iris.add(*synthetic_eyes)
    again = IrisColour.from_bytes(iris.to_bytes())
    np.testing.assert_allclose(again.pattern(), iris.pattern(), atol=1e-3)
    assert IrisColour().pattern() is None  # nothing measured: the flat disc


def test_eye_tile_paints_the_pattern_by_angle(ict_model):
    from invertavatar.texture.eyes import eye_tile

    iris = np.array([0.3, 0.35, 0.45], np.float32)
    sclera = np.array([0.85, 0.82, 0.8], np.float32)
    pattern = np.ones((PATTERN_RINGS, PATTERN_SECTORS, 3), np.float32)
    pattern[:, :PATTERN_SECTORS // 2] = (1.6, 1.0, 0.5)  # the upper half warm, the lower half cool
    pattern[:, PATTERN_SECTORS // 2:] = (0.5, 1.0, 1.6)
    flat = eye_tile(ict_model, "sclera", 256, iris, sclera)
    painted = eye_tile(ict_model, "sclera", 256, iris, sclera, iris_pattern=pattern)
    changed = np.abs(painted - flat).sum(-1) > 0.05
    assert changed.sum() > 50  # the iris' texels
    warmth = painted[..., 0] - painted[..., 2]
    assert warmth[changed].max() > 0.15 and warmth[changed].min() < -0.15  # both halves are there
    far = ~cv2.dilate(changed.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    np.testing.assert_allclose(painted[far], flat[far])  # the sclera is untouched
