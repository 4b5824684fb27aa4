"""ARKit name matching and the backend → Blender axis conversion (no bpy)."""

import math

import numpy as np
import pytest

from blender_addon.core import arkit, axes


def test_fifty_two_unique_names_in_groups():
    assert len(arkit.ARKIT_NAMES) == 52 == len(set(arkit.ARKIT_NAMES))
    grouped = [n for _, names in arkit.ARKIT_GROUPS for n in names]
    assert sorted(grouped) == sorted(arkit.ARKIT_NAMES)


@pytest.mark.parametrize("foreign, expected", [
    ("EyeBlinkLeft", "eyeBlinkLeft"), ("eyeBlink_L", "eyeBlinkLeft"), ("mouthSmile_R", "mouthSmileRight"),
    ("JAWOPEN", "jawOpen"), ("mouth_smile_left", "mouthSmileLeft"), ("browInnerUp", "browInnerUp"),
    ("smile", None), ("eyeBlink_X", None)])
def test_foreign_spellings(foreign, expected):
    assert arkit.to_arkit_name(foreign) == expected


def test_match_names_reports_unmatched_and_duplicates():
    mapping, unmatched = arkit.match_names(["JawOpen", "jawOpen", "wink"])
    assert mapping == {"JawOpen": "jawOpen"}
    assert unmatched == ["jawOpen", "wink"]


def test_points_up_and_face_direction():
    up_face = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    out = axes.points_to_blender(up_face)
    np.testing.assert_allclose(out, [[0, 0, 1], [0, -1, 0], [1, 0, 0]])  # up → +Z, face → −Y, left stays +X
    np.testing.assert_allclose(axes.points_to_backend(out), up_face)
    np.testing.assert_allclose(out, up_face @ axes.BACKEND_TO_BLENDER.T)


def test_quaternion_conversion_matches_matrix_conjugation():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(5, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    m = axes.BACKEND_TO_BLENDER
    expected = m @ axes.quat_to_matrix(q) @ m.T
    np.testing.assert_allclose(axes.quat_to_matrix(axes.quats_to_blender(q)), expected, atol=1e-12)
    np.testing.assert_allclose(axes.quats_to_backend(axes.quats_to_blender(q)), q, atol=1e-12)


def test_quats_in_frame_is_rest_relative_rotation():
    rng = np.random.default_rng(2)
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    frame = axes.quat_to_matrix(rng.normal(size=4))
    local = axes.quats_in_frame(q, frame)
    np.testing.assert_allclose(axes.quat_to_matrix(local), frame.T @ axes.quat_to_matrix(q) @ frame, atol=1e-12)


def test_gaze_directions():
    q = axes.gaze_to_quats(np.array([[0.0, math.pi / 2], [math.pi / 2, 0.0], [0.0, 0.0]]))
    forward = np.array([0.0, 0.0, 1.0])
    looks = axes.quat_to_matrix(q) @ forward
    np.testing.assert_allclose(looks, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], atol=1e-12)  # yaw → +X, pitch → +Y


def test_fps():
    assert axes.fps_to_blender(30.0) == (30, 1.0)
    fps, base = axes.fps_to_blender(29.97)
    assert fps == 30 and fps / base == pytest.approx(29.97)
    with pytest.raises(ValueError):
        axes.fps_to_blender(0.0)
