"""MediaPipe detector on real photos shipped in packages, and its errors on bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath

from invertavatar.detect import Detection, Detector, make_detector
from invertavatar.detect.landmark_schemes import (LEFT_EYE_CONTOUR, LEFT_IRIS_CENTER, RIGHT_EYE_CONTOUR,
                                                  RIGHT_IRIS_CENTER, eye_centers)
from invertavatar.detect.mediapipe_detector import MediaPipeDetector, find_task_file
from invertavatar.detect.mediapipe_mesh import canonical_face_mesh
from invertavatar.errors import InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_INDEX, ARKIT_NAMES

# Eye centres (subject's right, subject's left) in pixels, read off the photos by hand and confirmed by an
# independent 68-point detector (dlib) to within 2 px.
EYES = {"astronaut": ((203.5, 101.5), (246.5, 104.0)), "grace_hopper": ((223.5, 192.0), (305.5, 189.0))}


@pytest.fixture(params=["astronaut", "grace_hopper"])
def photo(request):
    return request.param, request.getfixturevalue(request.param)


def test_one_face_in_each_photo(detector, photo):
    name, image = photo
    found = detector.detect(image, name)
    assert isinstance(found, Detection) and isinstance(detector, Detector)
    height, width = image.shape[:2]
    assert found.faces_found == 1 and found.warnings == [] and found.scheme == "mediapipe478"
    assert found.image_size == (height, width) and found.source == name
    assert found.landmarks.shape == (478, 2) and found.landmarks_z.shape == (478,)
    x0, y0, x1, y1 = found.box
    assert 0 <= x0 < x1 < width and 0 <= y0 < y1 < height
    inside = ((found.landmarks[:, 0] >= x0 - 1e-3) & (found.landmarks[:, 0] <= x1 + 1e-3)
              & (found.landmarks[:, 1] >= y0 - 1e-3) & (found.landmarks[:, 1] <= y1 + 1e-3))
    assert inside.all()
    # The box holds both hand-measured eyes and is face-sized: 1.5-3 inter-ocular distances wide.
    (rx, ry), (lx, ly) = EYES[name]
    assert x0 < rx < lx < x1 and y0 < min(ry, ly) and max(ry, ly) < y1
    assert 1.5 < (x1 - x0) / (lx - rx) < 3.0


def test_eyes_and_irises_where_they_belong(detector, photo):
    name, image = photo
    found = detector.detect(image, name)
    right, left = eye_centers(found.landmarks)
    expected_right, expected_left = (np.array(p) for p in EYES[name])
    iod = np.linalg.norm(expected_left - expected_right)
    assert np.linalg.norm(right - expected_right) < 0.1 * iod
    assert np.linalg.norm(left - expected_left) < 0.1 * iod
    # Each iris centre lies inside the eyelid contour of its own eye.
    assert PolygonPath(found.landmarks[RIGHT_EYE_CONTOUR]).contains_point(found.landmarks[RIGHT_IRIS_CENTER])
    assert PolygonPath(found.landmarks[LEFT_EYE_CONTOUR]).contains_point(found.landmarks[LEFT_IRIS_CENTER])
    # Nose tip below the eyes, mouth below the nose, chin lowest.
    nose, mouth, chin = found.landmarks[4], found.landmarks[13], found.landmarks[152]
    assert max(right[1], left[1]) < nose[1] < mouth[1] < chin[1]


def test_blendshapes_in_arkit_order(detector, astronaut, grace_hopper):
    smiling = detector.detect(astronaut, "astronaut")
    neutral = detector.detect(grace_hopper, "grace_hopper")
    for found in (smiling, neutral):
        assert found.blendshapes.shape == (52,) and found.blendshapes.dtype == np.float32
        assert found.blendshapes.min() >= 0.0 and found.blendshapes.max() <= 1.0
        assert [ARKIT_NAMES[i] for i in np.flatnonzero(~found.blendshapes_valid)] == ["tongueOut"]
    # The astronaut smiles broadly with her teeth showing; Grace Hopper does not.
    for side in ("mouthSmileLeft", "mouthSmileRight"):
        assert smiling.blendshapes[ARKIT_INDEX[side]] > 0.5
        assert neutral.blendshapes[ARKIT_INDEX[side]] < 0.3


@pytest.mark.parametrize("closed", ["Right", "Left"])
def test_blink_sides_are_the_subjects(detector, astronaut, closed):
    """Paint one eye shut: the blink score of *that* side (subject's left/right, as ARKit means) must rise."""
    found = detector.detect(astronaut, "astronaut")
    contour = RIGHT_EYE_CONTOUR if closed == "Right" else LEFT_EYE_CONTOUR
    points = found.landmarks[contour]
    mask = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    winked = cv2.inpaint(np.ascontiguousarray(astronaut), mask, 5, cv2.INPAINT_TELEA)
    x0, x1 = points[:, 0].min(), points[:, 0].max()
    y = int(round(points[:, 1].mean())) + 1
    cv2.line(winked, (int(x0) + 2, y), (int(x1) - 2, y), (60, 40, 30), 1)  # the lash line of a closed lid
    other = "Left" if closed == "Right" else "Right"
    scores = detector.detect(winked, "winked").blendshapes
    assert scores[ARKIT_INDEX[f"eyeBlink{closed}"]] > scores[ARKIT_INDEX[f"eyeBlink{other}"]] + 0.1


def test_head_pose_reprojects_the_canonical_face(detector, task_path, photo):
    name, image = photo
    found = detector.detect(image, name)
    pose = found.head_pose.astype(np.float64)
    rotation = pose[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-4)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(pose[3], [0, 0, 0, 1])
    vertices = canonical_face_mesh(task_path)[0].astype(np.float64) * 0.01  # centimetres → metres
    camera = vertices @ rotation.T + pose[:3, 3]
    assert (camera[:, 2] > 0.1).all()  # in front of an OpenCV camera, tens of centimetres away
    height, width = image.shape[:2]
    focal = MediaPipeDetector.pose_focal_px(height)
    projected = focal * camera[:, :2] / camera[:, 2:] + [(width - 1) / 2, (height - 1) / 2]
    error = np.linalg.norm(projected - found.landmarks[:468], axis=1)
    iod = np.linalg.norm(np.subtract(*EYES[name]))
    assert np.median(error) < 0.15 * iod  # the canonical (average) face on this person's landmarks
    # Both faces look roughly at the camera: the face's +Z axis points back towards the camera (-Z in OpenCV).
    assert rotation[2, 2] < -0.8


def test_plausibility_signals(detector, photo):
    name, image = photo
    found = detector.detect(image, name)
    assert found.score is not None and found.score > 0.8
    assert found.shape_residual is not None and 0.0 < found.shape_residual < 0.15


def test_float_input_matches_uint8(detector, astronaut):
    as_float = detector.detect(astronaut.astype(np.float32) / 255.0, "float")
    as_uint8 = detector.detect(astronaut, "uint8")
    np.testing.assert_allclose(as_float.landmarks, as_uint8.landmarks, atol=0.5)


def test_two_faces_largest_with_warning(detector, two_faces):
    found = detector.detect(two_faces, "pair.png")
    assert found.faces_found == 2
    assert found.box[0] > 300  # Grace Hopper's (larger) face, in the right part
    assert len(found.warnings) == 1 and "2 faces" in found.warnings[0] and "pair.png" in found.warnings[0]


def test_two_faces_fail_policy(task_path, two_faces):
    with make_detector("mediapipe", multiple_faces="fail", model_path=task_path) as strict:
        with pytest.raises(InvertAvatarError) as err:
            strict.detect(two_faces, "pair.png")
    assert err.value.code == "several_faces" and "pair.png" in err.value.message and err.value.hint


@pytest.mark.parametrize("kind", ["blank", "noise", "cat"])
def test_no_face(detector, kind):
    if kind == "blank":
        image = np.full((512, 512, 3), 200, np.uint8)
    elif kind == "noise":
        image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    else:
        from skimage import data

        image = data.chelsea()  # a cat: the detector must not take it for a person
    with pytest.raises(InvertAvatarError) as err:
        detector.detect(image, f"frame 17 of {kind}.mp4")
    assert err.value.code == "no_face"
    assert f"frame 17 of {kind}.mp4" in err.value.message and err.value.hint


@pytest.mark.parametrize("image, expected", [
    (np.zeros((64, 64, 3), np.float64), "dtype float64"),
    (np.zeros((64, 64, 3), np.uint16), "dtype uint16"),
    (np.zeros((64, 64, 3), np.int32), "dtype int32"),
    (np.zeros((64, 64), np.uint8), "shape (64, 64)"),
    (np.zeros((64, 64, 4), np.uint8), "shape (64, 64, 4)"),
    (np.full((64, 64, 3), 2.0, np.float32), "[0, 1]"),
    (np.zeros((4, 4, 3), np.uint8), "4×4"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_images_are_refused_clearly(detector, image, expected):
    with pytest.raises(InvertAvatarError) as err:
        detector.detect(image, "bad.png")
    assert err.value.code == "bad_image"
    assert expected in err.value.message and "bad.png" in err.value.message and err.value.hint


def test_options_and_model_path(tmp_path, task_path):
    with pytest.raises(InvertAvatarError) as unknown:
        make_detector("retinaface")
    assert unknown.value.code == "unknown_detector" and "mediapipe" in unknown.value.hint
    with pytest.raises(InvertAvatarError) as policy:
        make_detector(multiple_faces="all")
    assert policy.value.code == "bad_option"
    with pytest.raises(InvertAvatarError) as missing:
        make_detector(model_path=tmp_path)
    assert missing.value.code == "asset_missing"
    assert "face_landmarker.task" in missing.value.message and "install.py" in missing.value.hint
    assert find_task_file(task_path.parent.parent) == task_path  # an assets folder laid out like shared/assets


def test_close_is_idempotent_and_final(task_path, astronaut):
    det = make_detector(model_path=task_path)
    det.detect(astronaut, "astronaut")
    det.close()
    det.close()
    with pytest.raises(InvertAvatarError) as err:
        det.detect(astronaut, "astronaut")
    assert err.value.code == "detector_closed"


def test_damaged_models_inside_the_bundle(tmp_path, task_path):
    """A bundle whose mesh parses but whose networks are garbage fails with damaged_asset, not a crash."""
    import zipfile

    damaged = tmp_path / "face_landmarker.task"
    with zipfile.ZipFile(task_path) as good, zipfile.ZipFile(damaged, "w") as bad:
        for name in good.namelist():
            bad.writestr(name, good.read(name) if name.endswith(".binarypb") else b"not a tflite model")
    with pytest.raises(InvertAvatarError) as err:
        make_detector(model_path=damaged)
    assert err.value.code == "damaged_asset" and "install.py" in err.value.hint


def test_unclosed_detector_exits_quietly(task_path):
    """A detector the caller forgot to close must not spray MediaPipe tracebacks at interpreter exit."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import invertavatar

    script = ("import numpy as np\n"
              "from invertavatar.detect import make_detector\n"
              f"det = make_detector(model_path={str(task_path)!r})\n"
              "try:\n    det.detect(np.zeros((64, 64, 3), np.uint8))\nexcept Exception:\n    pass\n"
              "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(Path(invertavatar.__file__).parents[1]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok"
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
