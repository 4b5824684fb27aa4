"""Hair cards without bpy: ribbon meshes along strands, a strand alpha texture and the hair colour it carries.

glTF and FBX cannot hold hair curves, so the export turns each guide into a *card*: a strip of quads along the
strand, as wide as the spacing between guides, textured with many thin strands whose alpha is 0 between them.
Everything here is numpy so it is tested without Blender; ``scene/export.py`` turns the arrays into a mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Ribbons:
    """A card mesh: 2 vertices per strand point (left, right edge), one quad per strand segment."""

    positions: np.ndarray  # (2P, 3) float32
    faces: np.ndarray  # (Q, 4) int32 vertex indices, counter-clockwise seen from the outward side
    loop_uv: np.ndarray  # (Q*4, 2) float32 per face corner: u across the card, v root (0) -> tip (1)
    root_index: np.ndarray  # (2P,) int32 the strand (curve) each vertex belongs to


def polygon_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (Newell's method) of (F, 4) polygons padded with -1, e.g. a bundle's ``faces``."""
    valid = faces >= 0
    first = faces[:, :1]
    current = np.where(valid, faces, first)
    following = np.where(np.roll(valid, -1, axis=1), np.roll(faces, -1, axis=1), first)
    a, b = vertices[current], vertices[following]
    normal = np.cross(a, b).sum(axis=1)
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)


def root_spacing(roots: np.ndarray, sample: int = 2048) -> float:
    """Median distance from a root to its nearest other root (metres): how far apart the guides grow."""
    roots = np.asarray(roots, np.float64)
    if len(roots) < 2:
        return 0.0
    # At most ``sample`` roots against all: O(n) memory per row keeps this cheap for thousands of guides.
    picks = roots[np.linspace(0, len(roots) - 1, min(sample, len(roots))).astype(int)]
    nearest = np.empty(len(picks))
    for i, p in enumerate(picks):
        d = np.linalg.norm(roots - p, axis=1)
        d[d == 0.0] = np.inf  # itself (and exact duplicates, which say nothing about spacing)
        nearest[i] = d.min()
    finite = nearest[np.isfinite(nearest)]
    return float(np.median(finite)) if finite.size else 0.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-20)


def ribbons(points: np.ndarray, offsets: np.ndarray, root_normals: np.ndarray, width: float,
            tip_width: float = 0.5) -> Ribbons:
    """Cards along curves (``points[offsets[c]:offsets[c+1]]``, root first).

    Each card lies flat on the head: its across direction is perpendicular to the strand and to the surface normal
    at the root, so the cards layer like shingles instead of standing up like fins. ``width`` is the card width at
    the root (metres); it narrows linearly to ``tip_width`` times that at the tip, as a lock of hair does.
    """
    points = np.asarray(points, np.float64)
    offsets = np.asarray(offsets, np.int64)
    sizes = np.diff(offsets)
    if np.any(sizes < 2):
        raise ValueError("every curve needs at least 2 points")
    curve = np.repeat(np.arange(len(sizes)), sizes)
    first = offsets[:-1][curve]
    last = offsets[1:][curve] - 1
    index = np.arange(len(points))
    # Tangent by central differences inside a curve, one-sided at its ends.
    ahead = points[np.minimum(index + 1, last)]
    behind = points[np.maximum(index - 1, first)]
    tangent = _unit(ahead - behind)
    normal = _unit(np.asarray(root_normals, np.float64))[curve]
    side = np.cross(tangent, normal)
    # Where the strand runs along the normal (straight out of the skin) the cross product vanishes: any
    # perpendicular does, so take the one from the world axis least aligned with the tangent.
    weak = np.linalg.norm(side, axis=1) < 1e-6
    if np.any(weak):
        axis = np.eye(3)[np.argmin(np.abs(tangent[weak]), axis=1)]
        side[weak] = np.cross(tangent[weak], axis)
    side = _unit(side)
    segment = np.linalg.norm(points - behind, axis=1)
    segment[index == first] = 0.0
    arc = np.cumsum(segment)
    arc -= arc[first]
    total = np.maximum(arc[last], 1e-20)
    v = arc / total
    half = 0.5 * width * (1.0 - (1.0 - tip_width) * v)
    left, right = points - side * half[:, None], points + side * half[:, None]
    positions = np.empty((2 * len(points), 3))
    positions[0::2], positions[1::2] = left, right
    # One quad per segment: (left_i, right_i, right_i+1, left_i+1); skip the last point of every curve.
    starts = index[index != last]
    faces = np.stack([2 * starts, 2 * starts + 1, 2 * starts + 3, 2 * starts + 2], axis=1)
    vertex_uv = np.stack([np.tile([0.0, 1.0], len(points)), np.repeat(v, 2)], axis=1)
    return Ribbons(positions.astype(np.float32), faces.astype(np.int32),
                   vertex_uv[faces.ravel()].astype(np.float32), np.repeat(curve, 2).astype(np.int32))


def melanin_to_rgb(melanin: float, redness: float, tint=(1.0, 1.0, 1.0), radial_roughness: float = 0.3) -> np.ndarray:
    """Linear RGB of a hair with this melanin, the way Blender's Principled Hair BSDF (Chiang) makes it.

    Blender turns melanin into an absorption coefficient (eumelanin and pheomelanin absorptions, plus the tint's);
    Chiang et al. 2016 give the colour that absorption shows at a radial roughness. A card's texture has to carry
    a plain colour, so this is that colour: the same hair as the Curves object, without the BSDF.
    """
    quantity = -np.log(max(1.0 - float(melanin), 1e-4))
    eumelanin, pheomelanin = quantity * (1.0 - float(redness)), quantity * float(redness)
    sigma = eumelanin * np.array([0.506, 0.841, 1.653]) + pheomelanin * np.array([0.343, 0.733, 1.924])
    b = float(radial_roughness)
    roughness_term = 5.969 - 0.215 * b + 2.532 * b ** 2 - 10.73 * b ** 3 + 5.574 * b ** 4 + 0.245 * b ** 5
    tint = np.clip(np.asarray(tint, np.float64), 1e-4, 1.0)
    sigma = sigma + (np.log(tint) / roughness_term) ** 2  # Blender adds the tint's own absorption
    return np.exp(-np.sqrt(sigma) * roughness_term)


def linear_to_srgb(rgb: np.ndarray) -> np.ndarray:
    """Linear values in 0..1 to sRGB-encoded (what an 8-bit sRGB image stores)."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def strand_texture(width: int = 256, height: int = 512, strands: int = 48, root_rgb=(0.05, 0.03, 0.02),
                   tip_rgb=None, seed: int = 0) -> np.ndarray:
    """An RGBA card texture (height, width, 4), float32 in 0..1, row 0 = the root (v = 0), sRGB-encoded colour.

    ``strands`` hairs run from root to tip, each a soft line a little over a pixel wide that thins towards its own
    length's end; alpha is their coverage (0 between them), the colour goes from ``root_rgb`` to ``tip_rgb``
    (linear RGB; the root's when None) with a little per-strand brightness variation.
    """
    rng = np.random.default_rng(seed)
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    centres = (np.arange(strands) + rng.uniform(0.2, 0.8, strands)) / strands
    lengths = rng.uniform(0.75, 1.0, strands)
    # A strand wanders sideways a little along its length (not a ruled grid of lines).
    sway = 0.25 / strands * np.sin(rng.uniform(2, 6, strands)[:, None] * v[None, :] + rng.uniform(0, 6.3, strands)[:, None])
    half_width = 0.7 / width + 0.45 / strands * rng.uniform(0.5, 0.9, strands)  # neighbours nearly touch
    alpha = np.zeros((height, width))
    shade = np.ones((height, width))
    for s in range(strands):
        thinning = np.clip(1.0 - v / lengths[s], 0.0, 1.0) ** 0.5  # (H,) 1 at the root, 0 past the strand's end
        distance = np.abs(u[None, :] - centres[s] - sway[s][:, None]) / (half_width[s] * np.maximum(thinning, 1e-3))[:, None]
        coverage = np.clip(1.0 - distance, 0.0, 1.0) * (thinning > 0)[:, None]
        brighter = coverage > alpha
        shade[brighter] = 0.85 + 0.3 * rng.uniform()
        alpha = np.maximum(alpha, coverage)
    tip = root_rgb if tip_rgb is None else tip_rgb
    colour = (1.0 - v)[:, None, None] * np.asarray(root_rgb) + v[:, None, None] * np.asarray(tip)
    rgb = linear_to_srgb(colour * shade[..., None])
    return np.concatenate([rgb, alpha[..., None]], axis=2).astype(np.float32)
