"""Small faces: the tiled second look, the tile grid, de-duplication and moving a pose back to the whole frame."""

from __future__ import annotations

import numpy as np
import pytest

from invertavatar.detect.mediapipe_detector import MediaPipeDetector
from invertavatar.detect.mediapipe_mesh import canonical_face_mesh
from invertavatar.detect.tiles import MAX_TILES, pose_to_full_frame, tile_grid, unique_faces
from invertavatar.errors import InvertAvatarError


@pytest.mark.parametrize("height, width", [(1280, 1280), (600, 1024), (3000, 4000), (300, 20000), (2048, 700)])
def test_tile_grid_covers_the_frame(height, width):
    tiles = tile_grid(height, width)
    assert 0 < len(tiles) <= MAX_TILES
    covered = np.zeros((height, width), bool)
    side = max(max(w, h) for _, _, w, h in tiles)
    for x, y, w, h in tiles:
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
        assert (w, h) == (min(side, width), min(side, height))  # square unless the frame is narrower
        covered[y:y + h, x:x + w] = True
    assert covered.all()


def test_small_frames_are_not_tiled():
    assert tile_grid(512, 512) == [] and tile_grid(300, 500) == [] and tile_grid(1080, 1920) != []


def test_unique_faces_keeps_the_most_central_duplicate():
    boxes = [np.array([100, 100, 200, 200.0]), np.array([102, 101, 203, 199.0]), np.array([400, 100, 480, 190.0])]
    assert unique_faces(boxes, margins=[5.0, 40.0, 10.0]) == [1, 2]


def test_pose_in_a_whole_frame_tile_is_unchanged():
    pose = np.eye(4, dtype=np.float32)
    pose[:3, 3] = [0.05, -0.02, 0.6]
    center = np.array([255.5, 255.5])
    np.testing.assert_allclose(pose_to_full_frame(pose, (0, 0), 400.0, center, 400.0, center), pose, atol=1e-6)


@pytest.fixture(scope="module")
def small_face(astronaut):
    """astronaut (a 90 px face) in the top-left corner of a 1280×1280 grey frame: too small for one look."""
    canvas = np.full((1280, 1280, 3), 128, np.uint8)
    canvas[:512, :512] = astronaut
    return canvas


def test_small_face_is_found_in_tiles(detector, task_path, astronaut, small_face):
    found = detector.detect(small_face, "far.jpg")
    reference = detector.detect(astronaut, "astronaut")
    iod = np.linalg.norm(reference.landmarks[33] - reference.landmarks[263])
    assert found.faces_found == 1 and found.warnings == []  # overlapping tiles saw it more than once
    assert np.median(np.linalg.norm(found.landmarks - reference.landmarks, axis=1)) < 0.05 * iod
    # The pose, moved from its tile, still projects the canonical face onto the landmarks in the whole frame.
    pose = found.head_pose.astype(np.float64)
    camera = canonical_face_mesh(task_path)[0] * 0.01 @ pose[:3, :3].T + pose[:3, 3]
    focal = MediaPipeDetector.pose_focal_px(1280)
    projected = focal * camera[:, :2] / camera[:, 2:] + (1280 - 1) / 2
    assert np.median(np.linalg.norm(projected - found.landmarks[:468], axis=1)) < 0.15 * iod
    assert found.score > 0.8


def test_without_tiles_the_small_face_is_missed(task_path, small_face):
    with MediaPipeDetector(model_path=task_path, search_tiles=False) as one_look:
        with pytest.raises(InvertAvatarError) as err:
            one_look.detect(small_face, "far.jpg")
    assert err.value.code == "no_face"
