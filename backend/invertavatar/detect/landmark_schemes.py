"""Landmark index tables that tie MediaPipe's 478 points to the iBUG-68 scheme and to the eyes.

iBUG 300-W / Multi-PIE 68-point order (in a frontal photo the subject's right is on the image left):
0-16 jaw from the subject's right ear over the chin (8) to the left ear; 17-21 right brow and 22-26 left brow, both
running image-left to image-right; 27-30 nose bridge, top to tip; 31-35 nostril base, image-left to image-right;
36-41 right eye and 42-47 left eye, each starting at its image-left corner and going clockwise in the image (upper
lid first); 48-59 outer lip from the right mouth corner, clockwise in the image; 60-67 inner lip likewise.

Each iBUG point is one MediaPipe vertex. The choice started from the widely used public correspondence tables and was
then settled on astronaut and grace_hopper (each also mirrored) against an independent 68-point iBUG detector
(dlib's shape predictor), choosing among the vertices of the matching feature (face oval, brow, eye and lip
contours) with the table kept mirror-symmetric: mean distance 0.048 inter-ocular distances, against 0.061 for the
common table, mostly from the jaw. Drawn over both photos in docs/benchmarks/detect.png.
"""

from __future__ import annotations

import numpy as np

MEDIAPIPE_TO_IBUG68: np.ndarray = np.array([
    # 0-16 jaw, on MediaPipe's face oval: subject's right ear → chin (8) → subject's left ear
    127, 93, 132, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 323, 356,
    # 17-21 right brow (outer → inner), 22-26 left brow (inner → outer): the upper edge of the brows
    70, 63, 105, 66, 107,
    336, 296, 334, 293, 300,
    # 27-30 nose bridge → tip, 31-35 nostril base (image left → right)
    168, 197, 5, 4,
    75, 97, 2, 326, 305,
    # 36-41 right eye: outer corner, upper lid ×2, inner corner, lower lid ×2
    33, 160, 158, 133, 153, 144,
    # 42-47 left eye: inner corner, upper lid ×2, outer corner, lower lid ×2
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lip: right corner, upper lip to the left corner (54), lower lip back
    61, 40, 37, 0, 267, 270, 291, 405, 314, 17, 84, 181,
    # 60-67 inner lip: right corner, upper, left corner (64), lower
    78, 82, 13, 312, 308, 317, 14, 87,
], dtype=np.int64)
MEDIAPIPE_TO_IBUG68.setflags(write=False)

# Eye corners (subject's right eye is on the image left in a frontal photo).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362

#: Iris points of the 478-point model: the centre first, then four points on the iris rim.
RIGHT_IRIS: np.ndarray = np.array([468, 469, 470, 471, 472], dtype=np.int64)
LEFT_IRIS: np.ndarray = np.array([473, 474, 475, 476, 477], dtype=np.int64)
RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER = 468, 473
#: Eyelid contours (16 points each, corner to corner along the upper lid then back along the lower lid).
RIGHT_EYE_CONTOUR: np.ndarray = np.array(
    [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7], dtype=np.int64)
LEFT_EYE_CONTOUR: np.ndarray = np.array(
    [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249], dtype=np.int64)
for _table in (RIGHT_IRIS, LEFT_IRIS, RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR):
    _table.setflags(write=False)


def lid_pairs(contour: np.ndarray) -> list[tuple[int, int]]:
    """(upper, lower) landmark pairs facing each other across an eye contour, outer to inner."""
    return [(int(contour[k]), int(contour[16 - k])) for k in range(1, 8)]


def eye_centers(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) eye-corner midpoints from 468 or 478 MediaPipe landmarks (N, 2 or 3)."""
    right = 0.5 * (landmarks[RIGHT_EYE_OUTER] + landmarks[RIGHT_EYE_INNER])
    left = 0.5 * (landmarks[LEFT_EYE_OUTER] + landmarks[LEFT_EYE_INNER])
    return right, left


def to_ibug68(landmarks: np.ndarray) -> np.ndarray:
    """Select the 68 iBUG points from MediaPipe landmarks (N ≥ 468, D) → (68, D)."""
    if landmarks.shape[0] < 468:
        raise ValueError(f"expected at least 468 MediaPipe landmarks, got {landmarks.shape[0]}")
    return landmarks[MEDIAPIPE_TO_IBUG68]
