"""A synthetic groom on a head mesh (hair/guides.npz arrays and a hair.json), for the hair renderer's tests, its
benchmark and pictures where no reconstructed hair exists.

Scalp guides root on the cranium above a hairline (high on the forehead, above the ears, low at the nape), leave the
skin steeply, leaning the way they are combed (back and down), and are kept a few millimetres off the skin (each
guide its own layer, so the groom has some volume) so they hug the head; beard guides (optional) root under the mouth and on the chin and grow a centimetre or two outwards and
down. Everything is in the mesh's neutral frame (+Y up, face towards +Z), metres.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

HEAD_MATERIALS = ("M_Face", "M_BackHead")
COMB = np.array([0.0, -0.55, -0.83])  # back and down


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    normals = np.zeros_like(vertices)
    for a, b, c in ((0, 1, 2), (0, 2, 3)):
        ok = faces[:, c] >= 0
        i, j, k = faces[ok, a], faces[ok, b], faces[ok, c]
        n = np.cross(vertices[j] - vertices[i], vertices[k] - vertices[i])
        for idx in (i, j, k):
            np.add.at(normals, idx, n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _hairline(z: np.ndarray) -> np.ndarray:
    """Height (m) above which scalp hair grows, by depth: the forehead's top at the front, the nape at the back."""
    return np.interp(z, [-0.06, 0.0, 0.06, 0.09], [0.0, 0.055, 0.1, 0.112])


def synthetic_groom(mesh: Mapping[str, np.ndarray], guides: int = 300, length: float = 0.16, points: int = 12,
                    beard: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """hair/guides.npz arrays (docs/bundle-format.md) of a combed-back groom on ``mesh``'s cranium.

    ``guides`` scalp guides of about ``length`` metres with ``points`` points each; with ``beard`` a fifth as many
    short beard guides (group 1) on the chin.
    """
    rng = np.random.default_rng(seed)
    vertices = np.asarray(mesh["vertices"], np.float64)
    faces = np.asarray(mesh["faces"]).astype(np.int64)
    names = [str(n) for n in np.asarray(mesh["material_names"])]
    head = np.isin(np.asarray(mesh["face_material"]), [names.index(m) for m in HEAD_MATERIALS if m in names])
    on_head = np.zeros(len(vertices), bool)
    on_head[faces[head][faces[head] >= 0]] = True
    normals = _vertex_normals(vertices, faces[head])
    # Any head polygon that uses the vertex: where the root "lies".
    owner = np.full(len(vertices), -1, np.int64)
    head_faces = np.nonzero(head)[0]
    for corner in range(4):
        ids = faces[head_faces, corner]
        ok = ids >= 0
        owner[ids[ok]] = head_faces[ok]

    from scipy.spatial import cKDTree

    skin = np.nonzero(on_head)[0]
    surface = (cKDTree(vertices[skin]), vertices[skin], normals[skin])

    scalp = np.nonzero(on_head & (vertices[:, 1] > _hairline(vertices[:, 2])) & (normals[:, 1] > -0.3))[0]
    roots = rng.choice(scalp, size=min(guides, len(scalp)), replace=False)
    layers = rng.uniform(0.003, 0.012, len(roots))
    curves = [_grow(vertices[r], normals[r], COMB, length, points, surface, layer) for r, layer in zip(roots, layers)]
    group = [0] * len(roots)
    beard_roots = np.zeros(0, np.int64)
    if beard:
        chin = np.nonzero(on_head & (vertices[:, 1] < -0.035) & (vertices[:, 1] > -0.085) & (vertices[:, 2] > 0.06)
                          & (normals[:, 2] > 0.3))[0]
        beard_roots = rng.choice(chin, size=min(max(guides // 5, 1), len(chin)), replace=False)
        for r in beard_roots:
            curves.append(_grow(vertices[r], normals[r], np.array([0.0, -1.0, 0.2]), 0.02, max(points // 3, 3)))
        group += [1] * len(beard_roots)
    all_roots = np.concatenate([roots, beard_roots])
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in curves])]).astype(np.int32)
    along = np.concatenate([np.linspace(0.0, 1.0, len(c)) for c in curves])
    face_uv = np.asarray(mesh["face_uv"])
    corner = np.argmax(faces[owner[all_roots]] == all_roots[:, None], axis=1)
    root_uv = np.asarray(mesh["uv"])[face_uv[owner[all_roots], corner]]
    return {
        "points": np.concatenate(curves).astype(np.float32),
        "curve_offsets": offsets,
        "radius": (4e-5 * (1.0 - 0.7 * along)).astype(np.float32),
        "root_face": owner[all_roots].astype(np.int32),
        "root_uv": root_uv.astype(np.float32),
        "group": np.asarray(group, np.uint8),
        "scalp_vertices": scalp.astype(np.int32),
    }


def _grow(root: np.ndarray, normal: np.ndarray, comb: np.ndarray, length: float, points: int,
          surface: tuple | None = None, layer: float = 0.0) -> np.ndarray:
    """One guide: off the skin along its normal, turning towards ``comb``; with ``surface`` (a KD-tree of the
    head's vertices, the vertices, their normals) every point is kept ``layer`` metres above the nearest skin."""
    step = length / (points - 1)
    # Off the skin at a steep angle, already leaning the way it is combed (a root does not stand straight up).
    direction = normal + 0.8 * comb
    direction /= np.linalg.norm(direction)
    curve = [root.copy()]
    position = root.copy()
    for _ in range(points - 1):
        position = position + direction * step
        if surface is not None:
            tree, skin, skin_normals = surface
            nearest = tree.query(position)[1]
            height = float((position - skin[nearest]) @ skin_normals[nearest])
            # Lift it back to its layer: hair lies on the head instead of going through it. The lift grows from
            # the root so the first segment still leaves the skin.
            target = layer * min(1.0, len(curve) / 3.0)
            if height < target:
                position = position + (target - height) * skin_normals[nearest]
        curve.append(position)
        direction = direction + 1.2 * comb
        direction /= np.linalg.norm(direction)
    return np.array(curve)


def synthetic_hair_params(root_colour: tuple[float, float, float] = (0.05, 0.03, 0.02), tip: bool = True,
                          random_color: float = 0.08) -> dict[str, Any]:
    """A hair.json for :func:`synthetic_groom` (both groups the same dark brown unless told)."""
    group = {"melanin": 0.82, "melanin_redness": 0.35, "tint": [1.0, 1.0, 1.0], "roughness": 0.32,
             "radial_roughness": 0.35, "coat": 0.1, "ior": 1.55, "random_color": random_color,
             "random_roughness": 0.1, "tip": {"melanin": 0.74, "melanin_redness": 0.38} if tip else None,
             "root_colour": list(root_colour), "length_m": 0.16, "strands_per_cm2": 120}
    return {"version": 1, "groups": {"scalp": dict(group), "beard": dict(group, length_m=0.02)}}
