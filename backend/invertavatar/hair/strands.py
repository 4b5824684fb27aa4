"""Guide curves grown inside the hair volume from roots on the fitted scalp.

Roots are scalp vertices, thinned to about one per ``ROOT_SPACING``, under which the volume holds hair. Each strand
leaves the scalp along its normal, then combs down the head under gravity (the gravity direction projected onto
the scalp's tangent plane, or straight down once the strand hangs free), keeping its own depth in the hair layer
(a fraction of the volume's thickness over its root), and stops where it would leave the volume. So the groom
follows the silhouette the keyframes carved, and is no longer than the photos show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .volume import HairVolume, ScalpGeometry

ROOT_SPACING = 0.011  # metres between guide roots
STEP = 0.008  # metres per growth step
MAX_STEPS = 80
ROOT_RADIUS, TIP_RADIUS = 4e-5, 1.5e-5  # a human hair is 50–100 µm across; tips taper


@dataclass
class Guides:
    """Guide curves (head frame, metres), root first, with the vertex each grows from."""

    points: np.ndarray  # (P, 3) float32
    offsets: np.ndarray  # (C + 1,) int32
    radius: np.ndarray  # (P,) float32
    root_vertex: np.ndarray  # (C,) int64

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        seg = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
        starts, ends = self.offsets[:-1], self.offsets[1:] - 1
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        return (cum[ends] - cum[starts]).astype(np.float32)


def thin_roots(points: np.ndarray, spacing: float) -> np.ndarray:
    """Indices of a subset of ``points`` about ``spacing`` apart (the first point per grid cell)."""
    cells = np.floor(points / spacing).astype(np.int64)
    _, first = np.unique(cells, axis=0, return_index=True)
    return np.sort(first)


class _Occupancy:
    """Dense boolean lookup of a volume's occupied voxels."""

    def __init__(self, volume: HairVolume, occupied: np.ndarray) -> None:
        self.volume = volume
        self.grid = np.zeros(int(np.prod(volume.shape)), bool)
        self.grid[volume._grid_index(volume.centres[occupied])] = True
        self.shape = np.array(volume.shape)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        ijk = np.floor((points - self.volume.origin) / self.volume.voxel).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < self.shape), axis=1)
        out = np.zeros(len(points), bool)
        out[inside] = self.grid[np.ravel_multi_index(tuple(ijk[inside].T), self.volume.shape)]
        return out


def covered_vertices(volume: HairVolume, occupied: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The ``vertices`` (indices) with hair just above them: the volume occupied 3 or 6 mm out along the normal."""
    g = volume.geometry
    occupancy = _Occupancy(volume, occupied)
    base, normal = g.vertices[vertices], g.normals[vertices]
    near = occupancy(base + normal * 0.003) | occupancy(base + normal * 0.006)
    return vertices[near]


def grow_guides(volume: HairVolume, occupied: np.ndarray, seed: int = 0) -> Guides | None:
    """Scalp guides inside the occupied voxels, or None when the volume holds no hair over the scalp."""
    g: ScalpGeometry = volume.geometry
    occupancy = _Occupancy(volume, occupied)
    candidates = g.scalp[thin_roots(g.vertices[g.scalp], ROOT_SPACING)]
    base, normal = g.vertices[candidates], g.normals[candidates]
    # Thickness over each root: how far along its normal the volume stays occupied.
    probe = np.arange(1, int(0.08 / volume.voxel) + 1) * volume.voxel * 0.5 + 0.003
    along = occupancy((base[:, None, :] + normal[:, None, :] * probe[None, :, None]).reshape(-1, 3))
    along = along.reshape(len(base), len(probe))
    has_hair = along[:, 0] | along[:, 1]
    if not has_hair.any():
        return None
    lead = np.cumprod(along[:, 1:], axis=1).sum(1)  # occupied probes in a row from the second one outwards
    thickness = probe[lead]
    roots, normal, thickness = candidates[has_hair], normal[has_hair], np.maximum(thickness[has_hair], 0.006)
    rng = np.random.default_rng(seed)
    layer = rng.uniform(0.25, 0.9, len(roots))  # each strand's layer in the hair, as a share of its thickness
    depth = thickness * layer
    skin_tree = cKDTree(g.vertices[g.skin])
    gravity = np.array([0.0, -1.0, 0.0])
    position = g.vertices[roots] + normal * 0.002
    direction = normal.copy()
    alive = np.ones(len(roots), bool)
    outside = np.zeros(len(roots), np.int32)
    paths = [position.copy()]
    for _ in range(MAX_STEPS):
        distance, index = skin_tree.query(position, k=1)
        surface_normal = g.normals[g.skin[index]]
        tangent = gravity - np.einsum("ij,j->i", surface_normal, gravity)[:, None] * surface_normal
        flat = np.linalg.norm(tangent, axis=1) < 0.2  # the crown: comb outwards from the top of the head
        radial = surface_normal * np.array([1.0, 0.0, 1.0])
        tangent[flat] = radial[flat] + 1e-6
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        # Hold the strand at its layer depth; once it hangs free of the head it falls, spreading to its layer of
        # the fall's width (long hair fans out over the shoulders as far as the keyframes saw it go).
        lift = np.clip((depth - distance) / 0.01, -1.0, 1.0)[:, None]
        # Below the ears hair does not hug the neck: it hangs.
        free = (distance > depth + 0.02) | (position[:, 1] < g.eye_level - 0.04)
        fall = gravity + _spread(occupancy, position, distance, layer, g.front - 0.05)
        wanted = np.where(free[:, None], fall, tangent + 0.8 * lift * surface_normal)
        direction = direction * 0.45 + wanted * 0.55
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        step = position + direction * STEP
        inside = occupancy(step)
        outside = np.where(inside, 0, outside + 1)
        alive &= outside <= 1  # one step of slack: the carving is a few voxels coarse
        position = np.where(alive[:, None], step, position)
        paths.append(np.where(alive[:, None], step, np.nan))
        if not alive.any():
            break
    return _pack(np.stack(paths, 1), roots)


def _spread(occupancy: _Occupancy, position: np.ndarray, distance: np.ndarray, layer: np.ndarray,
            axis_z: float) -> np.ndarray:
    """(N, 3) horizontal drift of falling strands towards their layer of the volume's width at their height: from
    the vertical axis behind the neck, the occupied span along each strand's own direction is probed, and the strand
    is drawn to ``layer`` of the way from the skin to its outer edge."""
    outward = position * np.array([1.0, 0.0, 1.0]) - np.array([0.0, 0.0, axis_z])
    radius = np.linalg.norm(outward, axis=1)
    outward /= np.maximum(radius, 1e-6)[:, None]
    probes = np.arange(0.02, 0.2, occupancy.volume.voxel)
    along = position[:, None, :] * np.array([0.0, 1.0, 0.0]) + np.array([0.0, 0.0, axis_z]) \
        + outward[:, None, :] * probes[None, :, None]
    occupied = occupancy(along.reshape(-1, 3)).reshape(len(position), len(probes))
    outer = np.where(occupied.any(axis=1), probes[np.where(occupied, np.arange(len(probes)), -1).max(axis=1)],
                     radius)
    inner = radius - distance  # the skin (or the neck) under the strand
    target = inner + layer * np.maximum(outer - inner, 0.0)
    return 0.6 * np.clip((target - radius) / 0.02, -1.0, 1.0)[:, None] * outward


def _pack(paths: np.ndarray, roots: np.ndarray) -> Guides | None:
    """Curves from (C, steps, 3) paths with NaN after each strand's end; drops the last (outside) points."""
    points, offsets, radius, kept = [], [0], [], []
    for c in range(len(paths)):
        valid = paths[c][~np.isnan(paths[c][:, 0])]
        valid = valid[:-1] if len(valid) > 3 else valid  # the last step left the volume
        if len(valid) < 3:
            continue
        points.append(valid)
        t = np.linspace(0.0, 1.0, len(valid))
        radius.append(ROOT_RADIUS + (TIP_RADIUS - ROOT_RADIUS) * t)
        offsets.append(offsets[-1] + len(valid))
        kept.append(roots[c])
    if not kept:
        return None
    return Guides(np.concatenate(points).astype(np.float32), np.asarray(offsets, np.int32),
                  np.concatenate(radius).astype(np.float32), np.asarray(kept, np.int64))
