"""Searching for small faces in overlapping tiles, and moving tile results back into the whole image.

MediaPipe's short-range face detector looks at the whole frame shrunk to 128 px, so a face narrower than about a
tenth of the frame is missed (a 90 px face is found in a 768 px frame, not in an 896 px one). When the whole frame
gives nothing, the detector looks again in overlapping square tiles half the frame's shorter side wide (at least
`MIN_TILE`).
"""

from __future__ import annotations

import math

import numpy as np

#: Smallest tile side. A tile finds faces down to about a tenth of its side, so 512 px tiles reach ~55 px faces —
#: about the least an avatar can be made from — and frames of 512 px or less are never tiled (no cost in clips).
MIN_TILE = 512
MAX_TILES = 24


def _starts(length: int, tile: int) -> list[int]:
    """Tile start offsets covering ``length`` with tiles of ``tile`` pixels overlapping by half."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile / 2)) + 1
    return [int(round(v)) for v in np.linspace(0, length - tile, count)]


def tile_grid(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square tiles ``(x, y, w, h)`` for a frame, or ``[]`` when the frame is too small to need them.

    The side is half the shorter image side (at least `MIN_TILE`), grown if needed to keep at most `MAX_TILES`.
    """
    tile = max(MIN_TILE, min(height, width) // 2)
    if tile >= max(height, width):
        return []
    while True:
        xs, ys = _starts(width, tile), _starts(height, tile)
        if len(xs) * len(ys) <= MAX_TILES:
            break
        tile = int(tile * 1.25)
    return [(x, y, min(tile, width), min(tile, height)) for y in ys for x in xs]


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def unique_faces(boxes: list[np.ndarray], margins: list[float], iou: float = 0.3) -> list[int]:
    """Indices of the faces to keep when overlapping tiles saw the same face twice.

    Among boxes that overlap by more than ``iou``, the one farthest from its tile's border (``margins``) wins: a face
    cut by a tile edge has worse landmarks.
    """
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: -margins[k]):
        if all(box_iou(boxes[i], boxes[k]) <= iou for k in kept):
            kept.append(i)
    return sorted(kept)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` onto unit vector ``b`` (Rodrigues)."""
    axis = np.cross(a, b)
    cos = float(np.dot(a, b))
    if np.linalg.norm(axis) < 1e-12 or cos <= -1.0 + 1e-12:
        return np.eye(3)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + k + k @ k / (1.0 + cos)


def pose_to_full_frame(pose: np.ndarray, origin: tuple[int, int], focal_tile: float, center_tile: np.ndarray,
                       focal_full: float, center_full: np.ndarray) -> np.ndarray:
    """Re-express a head pose found in a tile for the whole frame's virtual camera (OpenCV axes, metres).

    The head centre keeps its pixel position (shifted by the tile ``origin``) and its apparent size (depth scaled by
    the focal ratio). The head turns with its line of sight: a face seen off-centre in the tile and near the centre
    of the frame is looked at from a different direction, so the rotation taking one viewing ray onto the other is
    applied to the whole pose.
    """
    old = np.array(pose, dtype=np.float64)
    x, y, z = old[:3, 3]
    pixel = focal_tile * np.array([x, y]) / z + center_tile + np.asarray(origin, dtype=np.float64)
    depth = z * focal_full / focal_tile
    centre = np.array([*(depth * (pixel - center_full) / focal_full), depth])
    turn = _rotation_between(old[:3, 3] / np.linalg.norm(old[:3, 3]), centre / np.linalg.norm(centre))
    new = np.eye(4)
    new[:3, :3] = turn @ old[:3, :3]
    new[:3, 3] = centre
    return new.astype(np.float32)
