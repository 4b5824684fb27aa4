"""The MediaPipe → iBUG-68 table: complete, mirror-symmetric, and in iBUG order on the canonical face and a photo."""

from __future__ import annotations

import numpy as np
import pytest

from invertavatar.detect.landmark_schemes import (LEFT_EYE_CONTOUR, LEFT_IRIS, MEDIAPIPE_TO_IBUG68,
                                                  RIGHT_EYE_CONTOUR, RIGHT_IRIS, to_ibug68)
from invertavatar.detect.mediapipe_mesh import canonical_face_mesh

# iBUG-68 left/right pairs (subject's right ↔ subject's left); the other points lie on the midline.
IBUG_PAIRS = ([(k, 16 - k) for k in range(8)]
              + [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22), (31, 35), (32, 34)]
              + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
              + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)])
IBUG_MIDLINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


@pytest.fixture(scope="module")
def canonical(task_path):
    return canonical_face_mesh(task_path)[0].astype(np.float64)


@pytest.fixture(scope="module")
def mirror_of(canonical):
    """MediaPipe vertex index of each vertex's mirror image across x = 0."""
    mirrored = canonical * [-1.0, 1.0, 1.0]
    return np.argmin(np.linalg.norm(mirrored[:, None] - canonical[None], axis=2), axis=1)


def test_table_shape():
    assert MEDIAPIPE_TO_IBUG68.shape == (68,)
    assert len(set(MEDIAPIPE_TO_IBUG68.tolist())) == 68
    assert MEDIAPIPE_TO_IBUG68.min() >= 0 and MEDIAPIPE_TO_IBUG68.max() < 468
    assert not MEDIAPIPE_TO_IBUG68.flags.writeable


def test_table_is_mirror_symmetric(mirror_of):
    table = MEDIAPIPE_TO_IBUG68
    for right, left in IBUG_PAIRS:
        assert mirror_of[table[right]] == table[left], (right, left)
    for k in IBUG_MIDLINE:
        assert mirror_of[table[k]] == table[k], k


def test_ibug_order_on_the_canonical_face(canonical):
    p = canonical[MEDIAPIPE_TO_IBUG68]
    x, y, z = p[:, 0], p[:, 1], p[:, 2]  # +x subject's left, +y up, +z towards the viewer
    assert np.all(np.diff(x[0:17]) > 0)  # jaw runs from the subject's right ear to the left one
    assert np.argmin(y[0:17]) == 8  # chin lowest
    assert np.all(np.diff(x[17:27]) > 0)  # brows run image-left to image-right
    assert y[17:27].min() > y[36:48].max()  # brows above the eyes
    assert np.all(np.diff(y[27:31]) < 0) and np.argmax(z[27:36]) == 3  # bridge goes down to the tip (30)
    assert np.all(np.diff(x[31:36]) > 0) and y[31:36].max() < y[30]  # nostril base, below the tip
    for eye in (slice(36, 42), slice(42, 48)):
        e = p[eye]
        assert e[0, 0] < e[3, 0]  # corners: image-left first
        assert e[1:3, 1].min() > e[4:6, 1].max()  # upper lid above lower lid
    assert x[36:42].max() < 0 < x[42:48].min()  # right eye on the subject's right
    outer, inner = p[48:60], p[60:68]
    assert outer[0, 0] < outer[6, 0] and inner[0, 0] < inner[4, 0]  # mouth corners 48 < 54, 60 < 64
    assert outer[3, 1] > inner[2, 1] > inner[6, 1] > outer[9, 1]  # 51 above 62 above 66 above 57
    assert y[48:68].max() < y[33] and y[48:68].min() > y[8]  # the mouth between nose and chin


def test_ibug_points_on_a_photo(detector, astronaut):
    """On a frontal photo the 68 points keep the iBUG layout in image coordinates (y down)."""
    lm = to_ibug68(detector.detect(astronaut, "astronaut").landmarks)
    assert lm.shape == (68, 2)
    jaw = lm[0:17]
    assert np.all(np.diff(jaw[:, 0]) > 0) and np.argmax(jaw[:, 1]) == 8
    assert lm[17:27, 1].max() < lm[36:48, 1].min()  # brows above eyes
    assert lm[30, 1] < lm[48:68, 1].min() < lm[48:68, 1].max() < lm[8, 1]
    right_eye, left_eye = lm[36:42].mean(0), lm[42:48].mean(0)
    assert right_eye[0] < lm[30, 0] < left_eye[0]


def test_iris_and_eye_tables_are_paired(mirror_of):
    np.testing.assert_array_equal(mirror_of[RIGHT_EYE_CONTOUR], LEFT_EYE_CONTOUR)
    assert RIGHT_IRIS[0] == 468 and LEFT_IRIS[0] == 473
    with pytest.raises(ValueError):
        to_ibug68(np.zeros((68, 2)))
