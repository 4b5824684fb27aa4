"""The painted eyeball: pupil, iris and sclera, and where the painted iris looks when the eye is at rest.

Each layer is painted by the angle of a point from its eye's iris direction, about the eyeball sphere's centre
(headmodel/eyes.py). Both of ICT's eyes take their colours from one tile per layer (the left and right eyes share a
UV layout), and the layout's centre is not each eye's +Z: the left eye's forward point falls 0.06 of the tile left of
the right eye's. Painted around +Z, the two eyes overwrote each other's texels and the iris came out as a speckled
double ring. So the iris is centred where the layout's centre is (the mean of the eyes' forward points on the outer
layer); each eye then rests a few degrees off +Z (ICT: 5.4° outwards, about the angle between a real eye's optical
and visual axes). `rest_gaze` says how far, so that gaze is measured from where the painted iris looks. Eyes with
tiles of their own keep +Z.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..headmodel.eyes import eyeball_sphere

IRIS_RADIUS_IOD = 0.092  # iris radius / inter-ocular distance of an average adult (5.9 mm / 64 mm)
EYES = (("eye_L", "eyeball_left"), ("eye_R", "eyeball_right"))
FRONT_CAP = np.cos(np.radians(35.0))  # the part of the eyeball whose tile position is fitted as linear in direction
SHARED = 0.15  # forward points closer than this share of the tile belong to one shared layout


@dataclass(frozen=True)
class _EyeMap:
    """One eye's front cap in one tile: direction (dx, dy) ≈ ``to_direction`` @ (texel col, row) − ``forward``."""

    to_direction: np.ndarray  # (2, 2)
    forward: np.ndarray  # (2,) the tile position (col, row) of the eye's +Z
    centre: np.ndarray  # (2,) where the iris is painted (shared or own)


@lru_cache(maxsize=8)
def _texel_directions(model, slot: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Texel indices, their (col, row), their eye (0 left, 1 right, -1 none) and unit directions from that eye's
    centre, for every texel of ``slot`` that lies on an eyeball."""
    from .fusion import tile_geometry

    geometry = tile_geometry(model, slot, size)
    texel = geometry.texel.numpy()
    corners = geometry.corners.numpy()
    points = (model.vertices[corners] * geometry.bary.numpy()[..., None]).sum(1)
    eye = np.full(len(texel), -1)
    directions = np.zeros((len(texel), 3))
    for index, (_, region) in enumerate(EYES):
        mine = np.isin(corners[:, 0], model.regions[region])
        offset = points[mine] - eyeball_sphere(model.vertices[model.regions[region]]).centre
        directions[mine] = offset / np.maximum(np.linalg.norm(offset, axis=1, keepdims=True), 1e-12)
        eye[mine] = index
    position = np.stack([texel % size, texel // size], 1).astype(np.float64)
    for array in (texel, position, eye, directions):
        array.setflags(write=False)  # shared by the cache
    return texel, position, eye, directions


@lru_cache(maxsize=8)
def _eye_maps(model, slot: str, size: int) -> tuple[_EyeMap | None, _EyeMap | None]:
    """Per eye (left, right), the linear map of its front cap in the tile and the shared or own iris centre."""
    _, position, eye, directions = _texel_directions(model, slot, size)
    maps = []
    for index in range(len(EYES)):
        cap = (eye == index) & (directions[:, 2] > FRONT_CAP)
        if cap.sum() < 6:
            maps.append(None)
            continue
        design = np.c_[position[cap], np.ones(cap.sum())]
        solution = np.linalg.lstsq(design, directions[cap, :2], rcond=None)[0]  # direction = P @ A + b
        linear, offset = solution[:2].T, solution[2]
        maps.append((linear, np.linalg.solve(linear, -offset)))
    forwards = [m[1] for m in maps if m is not None]
    shared = len(forwards) == 2 and np.linalg.norm(forwards[0] - forwards[1]) < SHARED * size
    centre = np.mean(forwards, axis=0) if shared else None
    return tuple(None if m is None else _EyeMap(m[0], m[1], centre if shared else m[1]) for m in maps)


def rest_gaze(model, size: int = 256) -> dict[str, tuple[float, float]]:
    """``{"eye_L": (pitch, yaw), "eye_R": ...}`` radians: where each eye's painted iris looks with the eye unturned
    (+pitch up, +yaw towards +X, as `track.gaze.estimate_gaze` measures)."""
    if not all(region in model.regions for _, region in EYES):
        return {name: (0.0, 0.0) for name, _ in EYES}
    out = {}
    for (name, _), eye_map in zip(EYES, _eye_maps(model, "sclera", size)):
        if eye_map is None:
            out[name] = (0.0, 0.0)
            continue
        dx, dy = eye_map.to_direction @ (eye_map.centre - eye_map.forward)
        out[name] = (float(np.arcsin(np.clip(dy, -1, 1))), float(np.arcsin(np.clip(dx, -1, 1))))
    return out


def iris_angle(model, iris_radius_iod: float | None) -> float:
    """Half-angle (degrees) of the iris seen from the eyeball's centre, for an iris radius given as a fraction of
    the inter-ocular distance (measured in the photos, pipeline/iris.py) on this model's eyeballs."""
    left, right = (eyeball_sphere(model.vertices[model.regions[r]]) for _, r in EYES)
    iod = float(np.linalg.norm(left.centre - right.centre))
    ratio = IRIS_RADIUS_IOD if iris_radius_iod is None else float(np.clip(iris_radius_iod, 0.07, 0.12))
    return float(np.degrees(np.arcsin(np.clip(ratio * iod / left.radius, 0.2, 0.75))))


def _sample_pattern(pattern: np.ndarray, rho: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Bilinear look-up (N, 3) of a polar pattern (rings, sectors, 3) at radius fractions ``rho`` (0 centre, 1 rim)
    and angles ``phi`` (radians; the sectors wrap around)."""
    from ..pipeline.iris import PATTERN_INNER

    rings, sectors = pattern.shape[:2]
    r = np.clip((rho - PATTERN_INNER) / (1.0 - PATTERN_INNER) * rings - 0.5, 0.0, rings - 1.0)
    a = np.mod(phi / (2 * np.pi) * sectors - 0.5, sectors)
    r0 = np.floor(r).astype(int)
    r1 = np.minimum(r0 + 1, rings - 1)
    a0 = np.floor(a).astype(int) % sectors
    a1 = (a0 + 1) % sectors
    fr, fa = (r - r0)[:, None], (a - np.floor(a))[:, None]
    return ((pattern[r0, a0] * (1 - fa) + pattern[r0, a1] * fa) * (1 - fr)
            + (pattern[r1, a0] * (1 - fa) + pattern[r1, a1] * fa) * fr)


def eye_tile(model, slot: str, size: int, iris: np.ndarray, sclera: np.ndarray,
             iris_radius_iod: float | None = None, iris_pattern: np.ndarray | None = None) -> np.ndarray:
    """An eyeball layer painted by the angle from where its eye's iris looks at rest (`rest_gaze`): pupil, iris
    with a darker limbal ring, sclera. The two eyes' rest directions mirror their shared layout, so a texel both eyes
    use gets one colour. Both of ICT's eyeball layers get the painting: the outer (sclera) layer is what an opaque
    material shows.

    ``iris_pattern`` (pipeline/iris.py, `IrisColour.pattern`) is the person's iris relative to its mean colour on a
    polar grid whose angle 0 is the nasal side: the iris is painted as ``iris`` × that pattern instead of a flat
    disc.
    """
    image = np.broadcast_to(np.asarray(sclera, np.float32), (size * size, 3)).copy()
    if not all(region in model.regions for _, region in EYES):
        return image.reshape(size, size, 3)
    texel, _, eye, directions = _texel_directions(model, slot, size)
    outer = iris_angle(model, iris_radius_iod)
    pupil = 0.38 * outer
    rest = rest_gaze(model, size)
    for index, (name, _) in enumerate(EYES):
        mine = eye == index
        pitch, yaw = rest[name]
        looking = np.array([np.cos(pitch) * np.sin(yaw), np.sin(pitch), np.cos(pitch) * np.cos(yaw)])
        towards = directions[mine]
        angle = np.degrees(np.arccos(np.clip(towards @ looking, -1, 1)))[:, None]
        offset = towards[:, :2] - looking[:2]
        # Smooth steps (about a degree wide) instead of hard rings: no aliasing crescent at the iris edge.
        in_iris = np.clip((outer - angle) / 1.5 + 0.5, 0.0, 1.0)
        in_pupil = np.clip((pupil - angle) / 1.0 + 0.5, 0.0, 1.0)
        limbus = np.clip((angle - 0.8 * outer) / (0.2 * outer), 0.0, 1.0)  # the iris darkens towards its rim
        if iris_pattern is None:
            iris_colour = iris * (1.1 - 0.45 * limbus)
        else:
            # Angle 0 is nasal for the right eye (towards +X). The eyes share one layout, not mirrored: the left eye
            # shows the same pattern (its 0 is temporal), and a texel both eyes use gets one colour.
            on = in_iris[:, 0] > 0  # the rest is sclera: no look-up
            phi = np.arctan2(offset[on, 1], offset[on, 0])
            measured = np.ones((len(angle), 3), np.float32)
            measured[on] = _sample_pattern(np.asarray(iris_pattern, np.float32), angle[on, 0] / outer, phi)
            iris_colour = np.clip(iris * measured * (1.0 - 0.35 * limbus ** 2), 0.0, 1.0)
        colour = sclera * (1 - in_iris) + (iris_colour * (1 - in_pupil) + 0.03 * in_pupil) * in_iris
        image[texel[mine]] = colour
    return image.reshape(size, size, 3)
