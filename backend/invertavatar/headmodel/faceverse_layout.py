"""FaceVerse's units and texture tiles, derived from the file itself rather than assumed.

Units: FaceVerse versions store different units (the reference code scales v3.1 by 0.1 and v3.6 by 0.01 to reach the
same model space), so the scale to metres is measured: the distance between the two eyeball centres must be an adult
inter-ocular distance for exactly one power of ten; a file for which none fits is refused.

Tiles: FaceVerse has one seamless per-vertex UV chart for the whole head (face in the middle) and no materials. The
bundle's atlas (texture/atlas.py) has two fused skin tiles and an eye tile, so the chart is split where the model says
the face is: the UV box of its MediaPipe key points (padded) becomes the face tile, scaled to fill it; every other skin
triangle keeps its place in the full chart on the back-of-head tile (UDIM-style, u + 1); each eyeball gets an
azimuthal map around its forward axis on the eye tiles (front cap on the iris tile, the rest on the sclera tile,
as ICT's two eyeball layers), where the procedural eye is painted by angle.
The first V UV entries stay the file's per-vertex UVs (the official mesh condition samples them per vertex).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvertAvatarError

ADULT_IOD_M = (0.045, 0.085)  # eyeball centre distance of adult heads, metres (mean about 0.063)
UNIT_CANDIDATES = (("mm", 0.001), ("cm", 0.01), ("dm", 0.1), ("m", 1.0))
FACE_BOX_PAD = 0.12  # of the key points' UV box size on each side: brows, chin and cheeks past the outer landmarks
MATERIALS = ("M_Face", "M_BackHead", "M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight")
IRIS_CAP_DEG = 40.0  # eyeball triangles this close to the forward axis are the iris tile's (both tiles are painted)
HINT = "Use the FaceVerse file as released (v3.1: faceverse_v3_1.npy); see docs/faceverse.md."


def units_to_metres(vertices: np.ndarray, eye_left: np.ndarray, eye_right: np.ndarray) -> tuple[str, float]:
    """(unit name, metres per file unit) from the eyeball centres; refuses a file whose head size makes no sense."""
    iod = float(np.linalg.norm(vertices[eye_left].mean(0) - vertices[eye_right].mean(0)))
    for name, scale in UNIT_CANDIDATES:
        if ADULT_IOD_M[0] <= iod * scale <= ADULT_IOD_M[1]:
            return name, scale
    raise InvertAvatarError(
        "faceverse_units", f"The FaceVerse eyeballs are {iod:.4g} file units apart: no unit (mm, cm, dm, m) gives an "
        f"adult inter-ocular distance ({ADULT_IOD_M[0] * 100:.1f}–{ADULT_IOD_M[1] * 100:.1f} cm).", HINT)


def face_box(uv: np.ndarray, keypoints: np.ndarray) -> tuple[float, float, float, float]:
    """(u0, v0, u1, v1): the face's region of the chart, from where the MediaPipe key points lie in it."""
    points = uv[np.asarray(keypoints, np.int64)[:468]]  # the face mesh; 468+ are the irises, on the eyeballs
    # Percentiles, not extremes: a stray key point (on an eyelid fold, a lip corner inside the mouth) must not
    # stretch the face tile over the whole chart.
    low, high = np.percentile(points, 2, axis=0), np.percentile(points, 98, axis=0)
    pad = FACE_BOX_PAD * (high - low)
    low, high = np.clip(low - pad, 0.0, 1.0), np.clip(high + pad, 0.0, 1.0)
    if np.any(high - low < 0.05):
        raise InvertAvatarError("faceverse_damaged", "The FaceVerse key points have no extent in the UV chart.", HINT)
    return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def _eye_uv(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Azimuthal equidistant map of an eyeball around +Z: the front pole in the centre, the back pole on the rim."""
    direction = points - centre
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    theta = np.arccos(np.clip(direction[:, 2], -1.0, 1.0)) / np.pi  # 0 front .. 1 back
    phi = np.arctan2(direction[:, 1], direction[:, 0])
    return np.stack([0.5 + 0.5 * theta * np.cos(phi), 0.5 + 0.5 * theta * np.sin(phi)], 1)


def derive_layout(vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray, regions: dict[str, np.ndarray],
                  keypoints: np.ndarray) -> dict:
    """Materials and atlas source UVs for a FaceVerse mesh (see the module docstring).

    Returns ``uv`` (V + extra, 2), ``face_uv`` (T, 4, -1 padded), ``face_material`` (T,), ``material_names`` and
    the ``face_box`` used.
    """
    n = len(vertices)
    vertex_part = np.zeros(n, np.int64)  # 0 skin, 2 left eyeball, 4 right eyeball (indices into MATERIALS)
    vertex_part[np.asarray(regions["eyeball_left"])] = 2
    vertex_part[np.asarray(regions["eyeball_right"])] = 4
    corner_part = vertex_part[triangles]
    material = np.where((corner_part == corner_part[:, :1]).all(1), corner_part[:, 0], 0)
    for part, region in ((2, "eyeball_left"), (4, "eyeball_right")):
        centre = vertices[np.asarray(regions[region])].mean(0)
        chosen = np.nonzero(material == part)[0]
        direction = vertices[triangles[chosen]].mean(1) - centre
        cosine = direction[:, 2] / np.maximum(np.linalg.norm(direction, axis=1), 1e-12)
        material[chosen[cosine > np.cos(np.radians(IRIS_CAP_DEG))]] = part + 1
    box = face_box(uv, keypoints)
    u0, v0, u1, v1 = box
    inside = ((uv[:, 0] >= u0) & (uv[:, 0] <= u1) & (uv[:, 1] >= v0) & (uv[:, 1] <= v1))[triangles].all(1)
    material[(material == 0) & ~inside] = 1
    face_uv = np.full((len(triangles), 4), -1, np.int64)
    face_uv[:, :3] = triangles  # the neural condition's per-vertex entries; replaced below for the atlas tiles
    entries = [np.asarray(uv, np.float32)]
    offset = n
    for part in range(len(MATERIALS)):
        chosen = material == part
        used = np.unique(triangles[chosen])
        if part == 0:
            local = (uv[used] - [u0, v0]) / [u1 - u0, v1 - v0]
        elif part == 1:
            local = uv[used] + [1.0, 0.0]
        else:  # the eye tiles: each eyeball mapped around its own centre
            ball = np.asarray(regions["eyeball_left" if part < 4 else "eyeball_right"])
            local = _eye_uv(vertices[used], vertices[ball].mean(0))
        remap = np.full(n, -1, np.int64)
        remap[used] = offset + np.arange(len(used))
        face_uv[chosen, :3] = remap[triangles[chosen]]
        entries.append(np.asarray(local, np.float32))
        offset += len(used)
    return {"uv": np.concatenate(entries).astype(np.float32), "face_uv": face_uv.astype(np.int32),
            "face_material": material.astype(np.int16), "material_names": MATERIALS, "face_box": box}
