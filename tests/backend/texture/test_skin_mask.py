"""The skin mask keeps a synthetic hair fringe and background out and the face's skin in."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from invertavatar.detect import Detection
from invertavatar.detect.mediapipe_detector import find_task_file
from invertavatar.detect.mediapipe_mesh import canonical_face_mesh
from invertavatar.texture.skin_mask import FACE_OVAL, skin_mask

SKIN = (205, 150, 125)
HAIR = (70, 45, 30)
BACKGROUND = (60, 110, 200)
SIZE = 400


@pytest.fixture(scope="module")
def synthetic_face():
    """A flat-lit face (MediaPipe's canonical mesh seen from the front) under a hair fringe, on a blue background."""
    vertices = canonical_face_mesh(find_task_file())[0]
    scale = 0.75 * SIZE / float(np.ptp(vertices[:, 1]))
    points = np.stack([SIZE / 2 + vertices[:, 0] * scale, SIZE / 2 - vertices[:, 1] * scale], 1).astype(np.float32)
    landmarks = np.concatenate([points, np.repeat(points[[468 - 1]], 10, 0)])  # iris points are not used
    rng = np.random.default_rng(3)
    image = np.empty((SIZE, SIZE, 3), np.float32)
    image[:] = BACKGROUND
    cv2.fillPoly(image, [np.round(points[FACE_OVAL]).astype(np.int32)], SKIN)
    # The head above the face oval and a fringe over the top third of the forehead are hair.
    top = float(points[FACE_OVAL, 1].min())
    brows = float(points[[105, 334], 1].mean())
    fringe = top + 0.45 * (brows - top)
    cv2.ellipse(image, (SIZE // 2, int(top) + 10), (int(0.42 * SIZE), int(0.18 * SIZE)), 0, 180, 360, HAIR, -1)
    image[int(top) - 5:int(fringe)] = np.where(
        (image[int(top) - 5:int(fringe)] == SKIN).all(-1, keepdims=True), HAIR, image[int(top) - 5:int(fringe)])
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    detection = Detection(box=np.array([points[:, 0].min(), points[:, 1].min(), points[:, 0].max(),
                                        points[:, 1].max()], np.float32), landmarks=landmarks, landmarks_z=None,
                          scheme="mediapipe478", blendshapes=None, head_pose=None, faces_found=1)
    return image, detection, fringe


def test_hair_and_background_never_reach_skin(synthetic_face):
    image, detection, _ = synthetic_face
    mask = skin_mask(image, detection)
    hair = (image.astype(int) - HAIR).__abs__().sum(-1) < 30
    background = (image.astype(int) - BACKGROUND).__abs__().sum(-1) < 30
    skin = (image.astype(int) - SKIN).__abs__().sum(-1) < 30
    m = mask.mask  # the image is smaller than the working size: same pixels
    assert m.shape == image.shape[:2]
    hair_core = cv2.erode(hair.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    background_core = cv2.erode(background.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert m[hair_core].max() < 0.05 and m[background_core].max() < 0.05
    cheeks = detection.landmarks[[50, 280, 4, 199]].astype(int)
    assert all(m[y, x] > 0.9 for x, y in cheeks)
    assert m[skin].mean() > 0.6  # most of the skin counts (eyes, brows, mouth and the borders do not)


def test_eye_openings_are_not_skin(synthetic_face):
    image, detection, _ = synthetic_face
    mask = skin_mask(image, detection).mask
    for corner_a, corner_b in ((33, 133), (263, 362)):
        centre = detection.landmarks[[corner_a, corner_b]].mean(0).astype(int)
        assert mask[centre[1], centre[0]] < 0.05  # lid texels get lid skin only, never the eye itself


def test_sampling_maps_full_resolution_pixels(synthetic_face):
    image, detection, _ = synthetic_face
    big = cv2.resize(image, (3 * SIZE, 3 * SIZE), interpolation=cv2.INTER_NEAREST)
    scaled = Detection(box=detection.box * 3, landmarks=detection.landmarks * 3, landmarks_z=None,
                       scheme="mediapipe478", blendshapes=None, head_pose=None, faces_found=1)
    mask = skin_mask(big, scaled)
    assert max(mask.mask.shape) <= 512 and mask.scale < 1
    cheek = scaled.landmarks[[50]].astype(np.float32)
    corner = np.array([[5.0, 5.0]], np.float32)
    assert mask.sample(cheek)[0] > 0.9 and mask.sample(corner)[0] < 0.05


def test_other_landmark_schemes_get_no_mask(synthetic_face):
    image, detection, _ = synthetic_face
    ibug = Detection(box=detection.box, landmarks=detection.landmarks[:68], landmarks_z=None, scheme="ibug68",
                     blendshapes=None, head_pose=None, faces_found=1)
    assert skin_mask(image, ibug) is None


def test_a_hand_on_the_cheek_is_not_skin(synthetic_face):
    """A hand is skin-coloured: only the hand's own mask keeps it out. Painted over one cheek in the face's skin
    colour, the given hand's pixels leave the mask; the other cheek stays."""
    from invertavatar.detect.hands import Hand

    image, detection, _ = synthetic_face
    right_cheek, left_cheek = detection.landmarks[50], detection.landmarks[280]
    palm = 0.12 * SIZE
    wrist = right_cheek + np.array([0.0, 0.6 * palm], np.float32)
    fingers = [wrist + np.array([dx * palm, -palm - k * 0.3 * palm], np.float32)
               for dx in (-0.35, -0.12, 0.12, 0.35) for k in range(4)]
    thumb = [wrist + np.array([-0.5 * palm, -0.3 * palm - 0.2 * palm * k], np.float32) for k in range(4)]
    hand = Hand(np.array([wrist, *thumb, *fingers], np.float32), 0.99)
    without = skin_mask(image, detection, hands=None)
    with_hand = skin_mask(image, detection, hands=[hand])
    x, y = np.round(right_cheek).astype(int)
    assert without.mask[y, x] > 0.9 and with_hand.mask[y, x] < 0.05
    x, y = np.round(left_cheek).astype(int)
    assert with_hand.mask[y, x] > 0.9
    assert with_hand.hands == 1 and with_hand.hand_pixels > 0.5 * (palm ** 2)
    assert without.hands == 0 and without.hand_pixels == 0
    assert (with_hand.mask > 0.5).sum() < (without.mask > 0.5).sum() - with_hand.hand_pixels // 2


def test_hands_argument_is_checked(synthetic_face):
    image, detection, _ = synthetic_face
    with pytest.raises(ValueError, match="hands must be"):
        skin_mask(image, detection, hands="everywhere")


def test_skin_below_a_collar_is_not_the_neck(synthetic_face):
    """A skin-coloured neck under the chin, a dark collar across it (open at one side), skin-coloured chest below:
    the neck above the collar is skin, the collar and the chest are not (the opening joins chest and neck, so
    keeping what connects to the face would keep the chest)."""
    image, detection, _ = synthetic_face
    tall = np.concatenate([image, np.broadcast_to(np.array(BACKGROUND, np.uint8), (240, SIZE, 3))], 0).copy()
    chin = detection.landmarks[152]
    face_height = float(np.linalg.norm(detection.landmarks[152] - detection.landmarks[10]))
    x0, x1 = int(chin[0] - 0.25 * face_height), int(chin[0] + 0.25 * face_height)
    y0 = int(chin[1]) - 5
    collar = int(chin[1] + 0.3 * face_height)
    tall[y0:, x0:x1] = SKIN
    tall[collar:collar + int(0.08 * face_height), x0 - 20:x1 + 20] = (30, 35, 60)
    tall[collar:collar + int(0.08 * face_height), x1 - 30:x1] = SKIN  # a gap in the collar joins chest and neck
    result = skin_mask(tall, detection, hands=None)

    def at(x: float, y: float) -> float:
        return float(result.sample(np.array([[x, y]], np.float32))[0])

    assert at(chin[0], chin[1] + 0.15 * face_height) > 0.5  # the neck
    assert at(chin[0], collar + 5) < 0.05  # the collar
    chest = [at(x, y) for x in range(x0 + 5, x1 - 45, 4)
             for y in range(int(collar + 0.2 * face_height), int(chin[1] + 0.75 * face_height), 4)]
    assert max(chest) < 0.05


def _open_mouth(image: np.ndarray, detection, inside: tuple, between: tuple | None = None) -> np.ndarray:
    """``image`` with the inner lips' polygon filled with ``inside`` and, when given, a band of ``between`` over
    the upper lip's inner half (teeth a smile shows between the two lip contours)."""
    from invertavatar.texture.skin_mask import INNER_LIPS, OUTER_LIPS

    out = image.copy()
    points = detection.landmarks
    if between is not None:
        cv2.fillPoly(out, [np.round(points[OUTER_LIPS]).astype(np.int32)], between)
    cv2.fillPoly(out, [np.round(points[INNER_LIPS]).astype(np.int32)], inside)
    return out


def test_the_mouth_opening_stays_out_even_when_skin_coloured(synthetic_face):
    """A tongue or a lit palate can be close to skin in colour: the mouth is a hole in the mask all the same."""
    from dataclasses import replace

    image, detection, _ = synthetic_face
    landmarks = detection.landmarks.copy()
    face_height = float(np.linalg.norm(landmarks[152] - landmarks[10]))
    lower = [14, 87, 178, 88, 95, 317, 402, 318, 324, 17, 84, 181, 91, 146, 314, 405, 321, 375]
    landmarks[lower, 1] += 0.08 * face_height  # the canonical mesh's mouth is shut: open it (the picture is skin)
    opened = replace(detection, landmarks=landmarks)
    mask = skin_mask(image, opened, hands=None).mask
    centre = landmarks[[13, 14]].mean(0).astype(int)
    assert mask[centre[1], centre[0]] < 0.05


def test_teeth_between_the_lips_are_not_skin(synthetic_face):
    image, detection, _ = synthetic_face
    teeth = (236, 232, 222)
    mask = skin_mask(_open_mouth(image, detection, (60, 20, 25), between=teeth), detection, hands=None).mask
    outer_upper = detection.landmarks[0]  # the upper lip's outer middle, between the contours: teeth now
    inner_upper = detection.landmarks[13]
    point = ((outer_upper + inner_upper) / 2).astype(int)
    assert mask[point[1], point[0]] < 0.05
    # Lips of a lip colour stay skin.
    lips = skin_mask(_open_mouth(image, detection, (60, 20, 25), between=(180, 90, 95)), detection, hands=None).mask
    assert lips[point[1], point[0]] > 0.5


def test_a_white_collar_is_not_the_neck_of_a_pale_face(synthetic_face):
    """A pale, nearly grey face (an over-exposed or desaturated photo): the white shirt under its chin is close to
    it in chroma, but whiter than skin, so it is not the neck."""
    image, detection, _ = synthetic_face
    pale = (228, 214, 206)
    skin = (np.abs(image.astype(int) - SKIN).sum(-1) < 30)[..., None]
    tall = np.where(skin, np.clip(image.astype(int) - SKIN + pale, 0, 255), image).astype(np.uint8)
    tall = np.concatenate([tall, np.broadcast_to(np.array(BACKGROUND, np.uint8), (240, SIZE, 3))], 0).copy()
    chin = detection.landmarks[152]
    face_height = float(np.linalg.norm(detection.landmarks[152] - detection.landmarks[10]))
    x0, x1 = int(chin[0] - 0.25 * face_height), int(chin[0] + 0.25 * face_height)
    tall[int(chin[1]) - 5:, x0:x1] = pale
    collar = int(chin[1] + 0.12 * face_height)
    tall[collar:, x0:x1] = (250, 250, 252)  # a white shirt from just under the chin down
    result = skin_mask(tall, detection, hands=None)
    values = result.sample(np.array([[x, y] for x in range(x0 + 5, x1 - 5, 4)
                                     for y in range(collar + 4, int(chin[1] + 0.6 * face_height), 4)], np.float32))
    assert values.max() < 0.05
    assert float(result.sample(np.array([[chin[0], chin[1] + 0.06 * face_height]], np.float32))[0]) > 0.5  # neck
