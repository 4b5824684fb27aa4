"""The bundle's hair in the backend's pictures: guide curves densified into strands, drawn as camera-facing ribbons.

A bundle's ``hair/`` holds a few hundred *guides* (docs/bundle-format.md, "hair/"). Blender grows a full groom from
them with its procedural hair nodes; the preview does the same, cheaply:

1. :func:`build_strands` interpolates new strands between the guides. New roots are sampled on the head's surface
   where the guides grow (within a guide spacing of a guide root, on the scalp region and the materials the guides
   root on), and each takes the shape of its k nearest guides of the same group, blended by inverse distance — as
   Blender's *Interpolate Hair Curves* does. The count follows ``strands_per_cm2`` capped for speed.
2. :func:`pose_strands` moves them with the head: each strand's root follows the skin under it (the expression
   deltas of its anchor triangle, so beard strands ride the jaw and lips with jawOpen or a smile), then the whole
   strand turns rigidly with the head about the head bone like ``render.avatar.posed_vertices``. A strand is only
   translated by its root's skin, not bent or turned with the jaw: at preview sizes the jaw's rotation of a
   centimetre-long beard strand moves it by a pixel or two.
3. :func:`strand_ribbons` builds a camera-facing ribbon per strand (two vertices per point; half-width = the strand's
   ``radius``, but the ribbon at least ``MIN_WIDTH_PX`` wide at the root tapering to half that at the tip, so thin
   hair still covers) with one colour per vertex.
4. :func:`render_textured_with_hair` rasterizes the head and the ribbons in one call of ``render.rasterize`` so the
   z-buffer decides: the face hides hair behind it and hair hides the scalp.

Shading (per ribbon vertex, linear RGB, then sRGB-encoded like the albedo texture): the root colour of hair.json
(``root_colour``) blends to a tip colour (``tip_colour``), each strand a little brighter or darker (``random_color``),
lit by the preview's headlight with a Kajiya–Kay diffuse term and a specular lobe along the strand tangent whose
width comes from ``roughness`` (Chiang et al. 2016's longitudinal variance, as Blender's Principled Hair uses), and
darkened towards the roots (the other strands' shadow).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from .camera import Camera
from .interpolate import interpolate, sample_image
from .rasterize import Fragments, as_triangles, rasterize
from .textured import headlight_shading, uv_to_texture_pixels
from .transforms import quaternion_to_matrix

GROUP_NAMES = ("scalp", "beard")
#: Points per drawn strand (guides are resampled by arc length): one per ``STRAND_STEP`` of the longest guide, within
#: these bounds — short hair needs few, long hair enough for its bends to read as curves at preview sizes.
STRAND_POINTS = (8, 24)
STRAND_STEP = 0.012  # metres
#: Guides blended per interpolated strand (Blender's Interpolate Hair Curves defaults to a handful too).
NEIGHBOURS = 4
#: Drawn strands per 512 px of the picture's short side. With ~1.7 px ribbons this covers a head of hair without
#: gaps at preview sizes; the strands needed grow with the side (ribbon width is fixed in pixels, length is not).
STRANDS_PER_512 = 4000
MAX_STRANDS = 16000
#: Full ribbon width in pixels at the root, whatever the strand's real radius (a 40 µm hair is < 0.1 px here).
MIN_WIDTH_PX = 1.7
TIP_TAPER = 0.5  # the tip's minimum width as a share of the root's
ROOT_SHADOW = 0.45  # brightness at the very root (other strands shade it) ...
SHADOW_LENGTH = 0.35  # ... rising to full brightness over this share of the strand
#: What hair.json's contract shows when a group's entry is missing.
DEFAULT_GROUP = {"melanin": 0.8, "melanin_redness": 0.3, "tint": [1.0, 1.0, 1.0], "roughness": 0.3,
                 "radial_roughness": 0.3, "ior": 1.55, "random_color": 0.08, "tip": None,
                 "root_colour": [0.05, 0.03, 0.02], "strands_per_cm2": 120}


@dataclass
class Strands:
    """Drawable strands in the neutral head frame, all resampled to the same K points (``strand_points``).

    ``points`` (N,K,3) metres; ``radius`` (N,K) metres; ``anchor`` (N,4) head-mesh vertices under the root with
    ``anchor_weights`` (N,4) (they sum to 1); ``root_rgb`` / ``tip_rgb`` (N,3) linear colour at the root and the tip
    (tint and the strand's random brightness included); ``exponent`` and ``specular`` (N,) the highlight's
    sharpness and strength; ``group`` (N,) 0 scalp, 1 beard; ``guides`` how many of the strands are the guides.
    """

    points: np.ndarray
    radius: np.ndarray
    anchor: np.ndarray
    anchor_weights: np.ndarray
    root_rgb: np.ndarray
    tip_rgb: np.ndarray
    exponent: np.ndarray
    specular: np.ndarray
    group: np.ndarray
    guides: int

    def __len__(self) -> int:
        return int(self.points.shape[0])


# ----------------------------------------------------------------------------------------------------------- colour
def melanin_absorption(melanin: float, redness: float) -> np.ndarray:
    """Absorption coefficient σa (RGB) of Blender's melanin parametrisation of the Principled Hair BSDF.

    quantity = −ln(max(1 − melanin, 1e-4)), split by the redness into eumelanin = quantity·(1 − redness) and
    pheomelanin = quantity·redness; σa = eumelanin·(0.506, 0.841, 1.653) + pheomelanin·(0.343, 0.733, 1.924).
    """
    quantity = -math.log(max(1.0 - float(melanin), 1e-4))
    eumelanin, pheomelanin = quantity * (1.0 - float(redness)), quantity * float(redness)
    return eumelanin * np.array([0.506, 0.841, 1.653]) + pheomelanin * np.array([0.343, 0.733, 1.924])


def radial_term(radial_roughness: float) -> float:
    """Chiang et al. 2016's f(β) = 5.969 − 0.215β + 2.532β² − 10.73β³ + 5.574β⁴ + 0.245β⁵ (colour = exp(−√σa·f))."""
    b = float(radial_roughness)
    return 5.969 - 0.215 * b + 2.532 * b ** 2 - 10.73 * b ** 3 + 5.574 * b ** 4 + 0.245 * b ** 5


def melanin_colour(melanin: float, redness: float, radial_roughness: float) -> np.ndarray:
    """Linear RGB colour c = exp(−√σa · f(β)) of a fibre with this melanin at radial roughness β (Chiang et al.
    2016's inverse of their colour → absorption mapping, which Blender's Principled Hair uses)."""
    return np.exp(-np.sqrt(melanin_absorption(melanin, redness)) * radial_term(radial_roughness))


def group_parameters(params: Mapping[str, Any] | None, group: int) -> dict[str, Any]:
    """hair.json's entry for ``group`` (0 scalp, 1 beard) over :data:`DEFAULT_GROUP` (missing keys filled)."""
    groups = (params or {}).get("groups") or {}
    entry = groups.get(GROUP_NAMES[group]) or {}
    merged = dict(DEFAULT_GROUP)
    merged.update({key: value for key, value in entry.items() if value is not None or key == "tip"})
    return merged


def root_and_tip_colour(group: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Linear RGB at the root and at the tip of a group's strands.

    The root is the measured ``root_colour``: the de-lit colour of the person's hair, which is also what Blender's
    Principled Hair BSDF renders with the fitted parameters (hair/colour.py fits them to a table measured in
    Cycles), dye included, so the tint is not applied again. The tip is the measured ``tip_colour`` where given.
    A group without measurements (a hand-written hair.json) falls back on Chiang's colour of its melanin, tinted.
    """
    tint = np.clip(np.asarray(group.get("tint") or (1.0, 1.0, 1.0), np.float64), 0.0, 1.0)
    measured = group.get("root_colour")
    if measured is None:
        root = melanin_colour(group["melanin"], group["melanin_redness"], group["radial_roughness"]) * tint
        return root, root
    root = np.clip(np.asarray(measured, np.float64), 1e-4, 1.0)
    tip = group.get("tip_colour")
    return root, (np.clip(np.asarray(tip, np.float64), 1e-4, 1.0) if tip is not None else root)


def highlight(group: Mapping[str, Any]) -> tuple[float, float]:
    """(Kajiya–Kay exponent, peak strength) of a group's specular lobe (the R lobe: light reflected off the cuticle).

    Chiang et al. 2016 give the longitudinal variance of roughness r as v = (0.726 r + 0.812 r² + 3.7 r²⁰)²; a
    cosine lobe cos^p is a Gaussian of variance 1/p near its peak, so p = 1/v. The peak: the fibre's Fresnel
    reflectance at normal incidence ((ior − 1)/(ior + 1))², times the R lobe's azimuthal term straight back towards
    the light (Marschner et al. 2003: ¼·cos(φ/2) at φ = 0), over the longitudinal lobe's normaliser √(2πv).
    """
    r = float(np.clip(group.get("roughness", DEFAULT_GROUP["roughness"]), 0.02, 1.0))
    variance = (0.726 * r + 0.812 * r ** 2 + 3.7 * r ** 20) ** 2
    ior = float(group.get("ior", DEFAULT_GROUP["ior"]))
    fresnel = ((ior - 1.0) / (ior + 1.0)) ** 2
    return float(np.clip(1.0 / variance, 1.0, 400.0)), 0.25 * fresnel / math.sqrt(2.0 * math.pi * variance)


def linear_to_srgb(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB encoding of linear values (clamped to 0..1): the albedo texture is stored encoded."""
    c = rgb.clamp(0.0, 1.0)
    return torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=1e-12) ** (1.0 / 2.4) - 0.055)


# ----------------------------------------------------------------------------------------------------------- strands
def strand_points(points: np.ndarray, offsets: np.ndarray) -> int:
    """How many points every drawn strand gets: the longest guide's length over ``STRAND_STEP``, bounded."""
    steps = np.linalg.norm(np.diff(np.asarray(points, np.float64), axis=0), axis=1)
    inside = np.ones(len(steps), bool)
    inside[np.asarray(offsets[1:-1]) - 1] = False  # no step from one curve's tip to the next one's root
    lengths = np.add.reduceat(np.where(inside, steps, 0.0), np.asarray(offsets[:-1])) if len(steps) else [0.0]
    return int(np.clip(np.ceil(float(np.max(lengths)) / STRAND_STEP) + 1, *STRAND_POINTS))


def resample_curves(points: np.ndarray, offsets: np.ndarray, radius: np.ndarray,
                    count: int) -> tuple[np.ndarray, np.ndarray]:
    """Every curve resampled to ``count`` points evenly spaced by arc length: (C,count,3) points, (C,count) radius."""
    curves = len(offsets) - 1
    out = np.empty((curves, count, 3), np.float64)
    out_radius = np.empty((curves, count), np.float64)
    for c in range(curves):
        curve = np.asarray(points[offsets[c]:offsets[c + 1]], np.float64)
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
        if along[-1] <= 0:  # all points at the root: a zero-length strand stays there
            along = np.linspace(0.0, 1.0, len(curve))
        at = np.linspace(0.0, along[-1], count)
        for axis in range(3):
            out[c, :, axis] = np.interp(at, along, curve[:, axis])
        out_radius[c] = np.interp(at, along, np.asarray(radius[offsets[c]:offsets[c + 1]], np.float64))
    return out, out_radius


def _triangles(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,3) triangles of −1-padded polygons and the polygon each came from."""
    faces = np.asarray(faces)
    quads = np.nonzero(faces[:, 3] >= 0)[0]
    triangles = np.concatenate([faces[:, [0, 1, 2]], faces[quads][:, [0, 2, 3]]]).astype(np.int64)
    return triangles, np.concatenate([np.arange(len(faces)), quads])


def _guide_anchors(vertices: np.ndarray, faces: np.ndarray, root_face: np.ndarray,
                   roots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A guide root's anchor: the corners of its ``root_face``, weighted by inverse distance to the root."""
    corners = np.asarray(faces)[root_face].astype(np.int64)  # (C,4), −1 pads triangles
    valid = corners >= 0
    safe = np.where(valid, corners, corners[:, :1])
    distance = np.linalg.norm(vertices[safe] - roots[:, None], axis=-1)
    weights = np.where(valid, 1.0 / (distance + 1e-6), 0.0)
    return safe, weights / weights.sum(1, keepdims=True)


def _sample_roots(vertices: np.ndarray, triangles: np.ndarray, allowed: np.ndarray, count: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` points uniformly by area on the ``allowed`` triangles: positions, anchor corners, barycentrics."""
    tris = triangles[allowed]
    a, b, c = (vertices[tris[:, k]] for k in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    pick = rng.choice(len(tris), size=count, p=area / area.sum())
    u, v = rng.random(count), rng.random(count)
    root_u = np.sqrt(u)  # the square root makes the samples uniform over each triangle
    weights = np.stack([1.0 - root_u, root_u * (1.0 - v), root_u * v], 1)
    corners = tris[pick]
    positions = (vertices[corners] * weights[..., None]).sum(1)
    return positions, corners, weights


def _surface_area(vertices: np.ndarray, triangles: np.ndarray) -> float:
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def build_strands(hair: Mapping[str, np.ndarray], mesh: Mapping[str, np.ndarray], params: Mapping[str, Any] | None,
                  max_strands: int = STRANDS_PER_512, seed: int = 0) -> Strands:
    """The guides plus strands interpolated between them, at most ``max_strands`` in all (the guides always stay).

    For each group: new roots are sampled on the head's triangles that lie within one guide spacing (the median
    distance from a guide root to its nearest neighbour) of a guide root, belong to a material some guide roots on
    and — for scalp hair, when the bundle names ``scalp_vertices`` — touch the scalp region. How many: the group's
    ``strands_per_cm2`` over that area, the total scaled down to ``max_strands``. Each new strand is its root plus
    the inverse-distance blend of its ``NEIGHBOURS`` nearest same-group guides' shapes (relative to their roots).
    """
    from scipy.spatial import cKDTree

    vertices = np.asarray(mesh["vertices"], np.float64)
    faces = np.asarray(mesh["faces"])
    offsets = np.asarray(hair["curve_offsets"], np.int64)
    points = np.asarray(hair["points"])
    guides, radius = resample_curves(points, offsets, np.asarray(hair["radius"]), strand_points(points, offsets))
    roots = guides[:, 0]
    groups = np.asarray(hair["group"], np.int64)
    root_face = np.asarray(hair["root_face"], np.int64)
    anchor, anchor_weights = _guide_anchors(vertices, faces, root_face, roots)
    triangles, owner = _triangles(faces)
    materials = np.asarray(mesh["face_material"]) if "face_material" in mesh else np.zeros(len(faces), np.int64)
    scalp = np.zeros(len(vertices), bool)
    scalp[np.asarray(hair.get("scalp_vertices", np.zeros(0, np.int64)), np.int64)] = True
    centroids = vertices[triangles].mean(1)

    plans = []  # (group, allowed triangles, wanted strands)
    for g in np.unique(groups):
        members = np.nonzero(groups == g)[0]
        tree = cKDTree(roots[members])
        spacing = float(np.median(tree.query(roots[members], k=2)[0][:, 1])) if len(members) > 1 else 0.01
        near = tree.query(centroids, distance_upper_bound=max(spacing, 1e-4))[0] < np.inf
        allowed = near & np.isin(materials[owner], materials[root_face[members]])
        if g == 0 and scalp.any() and (allowed & scalp[triangles].any(1)).any():
            allowed &= scalp[triangles].any(1)
        if not allowed.any():
            continue
        density = float(group_parameters(params, int(g))["strands_per_cm2"])
        wanted = density * _surface_area(vertices, triangles[allowed]) * 1e4  # m² → cm²
        plans.append((int(g), members, tree, allowed, max(wanted - len(members), 0.0)))

    rng = np.random.default_rng(seed)
    room = max(int(max_strands) - len(roots), 0)
    total = sum(plan[4] for plan in plans)
    scale = min(1.0, room / total) if total > 0 else 0.0
    parts_points, parts_radius, parts_anchor, parts_weights, parts_group = [guides], [radius], [anchor], \
        [anchor_weights], [groups]
    for g, members, tree, allowed, wanted in plans:
        count = int(round(wanted * scale))
        if count == 0:
            continue
        positions, corners, bary = _sample_roots(vertices, triangles, allowed, count, rng)
        k = min(NEIGHBOURS, len(members))
        distance, nearest = tree.query(positions, k=k)
        distance, nearest = distance.reshape(count, k), members[nearest.reshape(count, k)]
        blend = 1.0 / (distance + 1e-5)
        blend /= blend.sum(1, keepdims=True)
        shapes = guides[nearest] - roots[nearest][:, :, None]  # (M,k,K,3) relative to each guide's root
        parts_points.append(positions[:, None] + np.einsum("mk,mkpc->mpc", blend, shapes))
        parts_radius.append(np.einsum("mk,mkp->mp", blend, radius[nearest]))
        parts_anchor.append(np.concatenate([corners, corners[:, :1]], 1))
        parts_weights.append(np.concatenate([bary, np.zeros((count, 1))], 1))
        parts_group.append(np.full(count, g, np.int64))

    group = np.concatenate(parts_group)
    n = len(group)
    root_rgb, tip_rgb = np.empty((n, 3)), np.empty((n, 3))
    exponent, specular = np.empty(n), np.empty(n)
    # One brightness factor per strand (random_color): 1 ± random_color, uniformly.
    jitter = 2.0 * np.random.default_rng(seed + 1).random(n) - 1.0
    for g in np.unique(group):
        entry = group_parameters(params, int(g))
        root, tip = root_and_tip_colour(entry)
        factor = 1.0 + float(entry.get("random_color", 0.0)) * jitter[group == g]
        root_rgb[group == g] = root[None] * factor[:, None]
        tip_rgb[group == g] = tip[None] * factor[:, None]
        exponent[group == g], specular[group == g] = highlight(entry)
    return Strands(np.concatenate(parts_points).astype(np.float32), np.concatenate(parts_radius).astype(np.float32),
                   np.concatenate(parts_anchor).astype(np.int64), np.concatenate(parts_weights).astype(np.float32),
                   root_rgb.astype(np.float32), tip_rgb.astype(np.float32), exponent.astype(np.float32),
                   specular.astype(np.float32), group.astype(np.uint8), len(roots))


_cache: OrderedDict[tuple, Strands] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 4


def preview_strand_count(width: int, height: int) -> int:
    """How many strands a picture of this size draws at most (see :data:`STRANDS_PER_512`)."""
    return int(np.clip(round(STRANDS_PER_512 * min(width, height) / 512.0), 200, MAX_STRANDS))


def bundle_strands(bundle: Any, max_strands: int) -> Strands | None:
    """The bundle's drawable strands (``None`` without hair), cached by the hair's and the mesh's content so a
    reenactment's frames densify once."""
    hair = getattr(bundle, "hair", None)
    if not hair:
        return None
    mesh = bundle.mesh
    digest = hashlib.sha1()
    for key in ("points", "curve_offsets", "radius", "root_face", "group", "scalp_vertices"):
        digest.update(np.ascontiguousarray(hair[key]).tobytes())
    digest.update(np.ascontiguousarray(mesh["vertices"]).tobytes())
    digest.update(json.dumps(getattr(bundle, "hair_params", None) or {}, sort_keys=True).encode())
    key = (digest.hexdigest(), int(max_strands))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    strands = build_strands(hair, mesh, getattr(bundle, "hair_params", None), max_strands)
    with _cache_lock:
        _cache[key] = strands
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return strands


# ----------------------------------------------------------------------------------------------------------- posing
def head_pivot(mesh: Mapping[str, np.ndarray]) -> torch.Tensor:
    """The head bone's head (where ``posed_vertices`` turns the head), else the origin."""
    names = [str(n) for n in mesh.get("bone_names", ())]
    if "head" in names and "bone_heads" in mesh:
        return torch.from_numpy(np.asarray(mesh["bone_heads"], np.float32)[names.index("head")])
    return torch.zeros(3)


def pose_strands(strands: Strands, mesh: Mapping[str, np.ndarray], arkit: np.ndarray, rotation: np.ndarray,
                 translation: np.ndarray) -> torch.Tensor:
    """(N,K,3) posed strand points: each strand shifted by its root's expression displacement, then the head's
    rotation (quaternion [w, x, y, z]) about the head bone and translation, as ``posed_vertices`` moves the skin."""
    points = torch.from_numpy(strands.points)
    weights = np.asarray(arkit, np.float32)
    if np.any(weights != 0):
        deltas = np.asarray(mesh["expression_deltas"], np.float32)[:, strands.anchor]  # (E,N,4,3)
        moved = np.einsum("e,enac,na->nc", weights, deltas, strands.anchor_weights)
        points = points + torch.from_numpy(moved.astype(np.float32))[:, None]
    pivot = head_pivot(mesh)
    R = quaternion_to_matrix(torch.from_numpy(np.asarray(rotation, np.float32)))
    return (points - pivot) @ R.T + pivot + torch.from_numpy(np.asarray(translation, np.float32))


# ----------------------------------------------------------------------------------------------------------- ribbons
def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def strand_ribbons(strands: Strands, posed: torch.Tensor, camera: Camera, *, shading: bool = True,
                   ambient: float = 0.35) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Camera-facing ribbons of the posed strands: world vertices (2NK,3), triangles (2N(K−1),3) counter-clockwise
    as the camera sees them, and each vertex's sRGB colour (2NK,3) in 0..1.

    The ribbon's half-width at a point is the strand's radius, but at least half of ``MIN_WIDTH_PX`` pixels
    (thinning to ``TIP_TAPER`` of it at the tip) at that point's depth. With ``shading`` the colour is lit by a
    light at the camera (the preview's headlight); without it, it is the unlit albedo.
    """
    n, k = posed.shape[:2]
    device = posed.device

    def per_strand(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device)

    centre = camera.center.reshape(3).to(posed)
    # Tangents: central differences inside, one-sided at the ends.
    tangent = _unit(torch.cat([posed[:, 1:2] - posed[:, :1], posed[:, 2:] - posed[:, :-2],
                               posed[:, -1:] - posed[:, -2:-1]], 1))
    to_eye = _unit(centre - posed)
    side = torch.linalg.cross(tangent, to_eye, dim=-1)
    # A strand pointing straight at the camera has no side: any direction across the view will do.
    fallback = _unit(torch.linalg.cross(to_eye, torch.tensor([0.0, 1.0, 0.0], device=device).expand_as(to_eye), dim=-1))
    side = torch.where(side.norm(dim=-1, keepdim=True) > 1e-6, _unit(side), fallback)
    along = torch.linspace(0.0, 1.0, k, device=device)[None, :]  # root 0 → tip 1
    depth = camera.world_to_camera(posed.reshape(1, -1, 3))[0, :, 2].reshape(n, k)
    focal = float(camera.K.reshape(-1, 3, 3)[0, 0, 0])
    min_half = 0.5 * MIN_WIDTH_PX * (1.0 - (1.0 - TIP_TAPER) * along) * depth.clamp(min=1e-6) / focal
    half = torch.maximum(per_strand(strands.radius), min_half)
    offset = side * half[..., None]
    world = torch.stack([posed - offset, posed + offset], 2).reshape(-1, 3)  # (N,K,2,3): left, right per point

    base = per_strand(strands.root_rgb)[:, None] * (1.0 - along[..., None]) \
        + per_strand(strands.tip_rgb)[:, None] * along[..., None]  # (N,K,3) linear
    if shading:
        cosine = (tangent * to_eye).sum(-1).clamp(-1.0, 1.0)
        sine = (1.0 - cosine ** 2).clamp(min=0.0).sqrt()
        # Kajiya–Kay with the light at the eye: the half vector is the view direction, so diffuse and specular are
        # both functions of the angle between the strand and the view.
        diffuse = ambient + (1.0 - ambient) * sine
        specular = per_strand(strands.specular)[:, None] * sine ** per_strand(strands.exponent)[:, None]
        shadow = ROOT_SHADOW + (1.0 - ROOT_SHADOW) * (along / SHADOW_LENGTH).clamp(max=1.0) ** 0.5
        base = (base * diffuse[..., None] + specular[..., None]) * shadow[..., None]
    colour = linear_to_srgb(base)[:, :, None].expand(n, k, 2, 3).reshape(-1, 3)

    ids = torch.arange(n * k * 2, device=device).reshape(n, k, 2)
    left0, right0, left1, right1 = ids[:, :-1, 0], ids[:, :-1, 1], ids[:, 1:, 0], ids[:, 1:, 1]
    triangles = torch.cat([torch.stack([left0, right0, right1], -1), torch.stack([left0, right1, left1], -1)],
                          1).reshape(-1, 3)
    # Make every triangle face the camera (the head is rasterized with back faces culled, hair has no back).
    screen = camera.project(world[None])[0]
    x, y = screen[triangles, 0], screen[triangles, 1]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    triangles = torch.where((area > 0)[:, None], triangles[:, [0, 2, 1]], triangles)
    return world, triangles, colour


# ----------------------------------------------------------------------------------------------------------- drawing
def render_textured_with_hair(vertices: torch.Tensor, triangles: torch.Tensor | np.ndarray, uv: torch.Tensor,
                              uv_triangles: torch.Tensor | np.ndarray, texture: torch.Tensor, camera: Camera,
                              hair_vertices: torch.Tensor, hair_triangles: torch.Tensor, hair_colour: torch.Tensor,
                              *, background: torch.Tensor | float = 0.0, shading: bool = True, ambient: float = 0.35,
                              backend: str | None = None) -> torch.Tensor:
    """``render_textured`` of one head with hair ribbons in the same z-buffer: (1,H,W,3) float in 0..1.

    ``vertices`` (V,3), ``triangles``/``uv``/``uv_triangles``/``texture`` as for ``render_textured``;
    ``hair_vertices`` (Vh,3) world, ``hair_triangles`` (Th,3) index them (camera-facing), ``hair_colour`` (Vh,3)
    per-vertex colour. Head pixels are coloured exactly as ``render_textured`` colours them.
    """
    head_tris = as_triangles(triangles, vertices.shape[0], vertices.device)
    uv_tris = as_triangles(uv_triangles, uv.shape[0], vertices.device)
    count = head_tris.shape[0]
    world = torch.cat([vertices, hair_vertices.to(vertices)], 0)[None]
    everything = torch.cat([head_tris, hair_triangles.to(head_tris) + vertices.shape[0]], 0)
    fragments = rasterize(camera.project(world), everything, camera.height, camera.width, cull_backfaces=True,
                          backend=backend)
    is_head = (fragments.tri_id >= 0) & (fragments.tri_id < count)
    is_hair = fragments.tri_id >= count
    head = Fragments(torch.where(is_head, fragments.tri_id, -1), fragments.bary, fragments.depth)
    strands = Fragments(torch.where(is_hair, fragments.tri_id - count, -1), fragments.bary, fragments.depth)

    pix_uv = interpolate(uv, head, uv_tris)
    tex = texture[None] if texture.ndim == 3 else texture
    colour = sample_image(tex, uv_to_texture_pixels(pix_uv, tex.shape[1], tex.shape[2]).to(tex.dtype),
                          padding="border")
    if shading:
        colour = colour * headlight_shading(vertices[None], head_tris, head, camera, ambient).to(colour.dtype)
    hair_rgb = interpolate(hair_colour.to(colour.dtype), strands, hair_triangles)
    bg = torch.as_tensor(background, dtype=colour.dtype, device=colour.device)
    image = torch.where(is_head[..., None], colour, bg)  # bg broadcasts: a scalar, (3,) or (H,W,3)
    return torch.where(is_hair[..., None], hair_rgb, image)


def draw_hair_bundle(bundle: Any, vertices: torch.Tensor, triangles: np.ndarray, uv: torch.Tensor,
                     uv_triangles: np.ndarray, texture: torch.Tensor, camera: Camera, arkit: np.ndarray,
                     rotation: np.ndarray, translation: np.ndarray, *, background: torch.Tensor | float = 0.0,
                     shading: bool = True, backend: str | None = None) -> torch.Tensor | None:
    """The head (already posed ``vertices``) with the bundle's hair posed the same way: (1,H,W,3), or ``None`` when
    the bundle has no hair (the caller then renders the head alone, exactly as before)."""
    strands = bundle_strands(bundle, preview_strand_count(camera.width, camera.height))
    if strands is None:
        return None
    posed = pose_strands(strands, bundle.mesh, arkit, rotation, translation).to(vertices.device)
    hair_world, hair_tris, hair_colour = strand_ribbons(strands, posed, camera, shading=shading)
    return render_textured_with_hair(vertices, triangles, uv, uv_triangles, texture, camera, hair_world, hair_tris,
                                     hair_colour, background=background, shading=shading, backend=backend)


#: The background :func:`hair_masks` renders on: never a colour of a head or its hair.
MASK_BACKGROUND = (255, 0, 255)


def hair_masks(bundle: Any, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head ∪ hair, hair alone) silhouettes (H, W) bool of a bundle at rest through ``camera``, and the render with
    hair: the preview (render.avatar.render_avatar) drawn with and without its hair; hair is where they differ."""
    from .avatar import render_avatar

    arkit, pose, move = np.zeros(len(bundle.mesh["expression_names"])), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3)
    with_hair = render_avatar(bundle, arkit, pose, move, camera, background=MASK_BACKGROUND, hair=True)
    bald = render_avatar(bundle, arkit, pose, move, camera, background=MASK_BACKGROUND, hair=False)
    silhouette = np.any(with_hair != np.array(MASK_BACKGROUND), axis=-1)
    hair = np.any(np.abs(with_hair.astype(int) - bald.astype(int)) > 2, axis=-1) & silhouette
    return silhouette, hair, with_hair
