"""A synthetic FaceVerse-v3.1-format file built from the ICT head, for tests and accuracy figures.

The real ``faceverse_v3_1.npy`` cannot be shipped or downloaded here. This builds a dict with its key names, array
shapes, dtypes, units (centimetres) and orientation (+Y up, face towards +Z) as documented (reference §2.2), on a real
head surface: ICT's skin and eyeballs re-indexed FaceVerse-style (skin first, then the left and right eyeball, bounded
by ``ver_inds``), one seamless cylindrical per-vertex UV chart (face in the middle), 150 identity components (ICT's
100 and 50 mixes of them) and 171 non-negative expression components (each of ICT's ARKit shapes but
``UNREPRESENTABLE`` alone, then sparse non-negative mixes), and ``mediapipe_keypoints`` from ICT's calibrated
MediaPipe table. What it cannot reproduce: FaceVerse's real topology (28,227 vertices), its statistical bases and its
UV chart; see docs/faceverse.md.
"""

from __future__ import annotations

import numpy as np

from .base import HeadModel

M_TO_CM = 100.0
N_IDENTITY, N_EXPRESSION = 150, 171
# ARKit shapes left out of every synthetic expression component: the ARKit map must report them as unrepresentable.
UNREPRESENTABLE = ("cheekPuff_L", "cheekPuff_R", "noseSneer_L", "noseSneer_R")


def _keypoints(ict: HeadModel, keep: np.ndarray) -> np.ndarray:
    """478 vertex ids (new indexing): ICT's MediaPipe table's strongest corner, nearest kept vertex for the rest."""
    from scipy.spatial import cKDTree

    from ..track.correspondence import correspondence_for

    table = correspondence_for(ict, "mediapipe478")
    position = np.zeros((478, 3))
    known = np.zeros(478, bool)
    strongest = table.corners[np.arange(len(table.corners)), np.argmax(table.bary, 1)]
    position[table.landmark_ids] = ict.vertices[strongest]
    known[table.landmark_ids] = True
    # Unmeasured face points: the mean of the measured ones (rare; the tracker only uses 0..467).
    position[~known] = position[known].mean(0)
    # Iris centres and rings (468-472 the subject's right eye, 473-477 the left) on the front of the eyeballs.
    for start, region in ((468, "eyeball_right"), (473, "eyeball_left")):
        ball = ict.vertices[ict.regions[region]]
        centre = ball.mean(0)
        radius = float(np.linalg.norm(ball - centre, axis=1).max())
        front = centre + [0.0, 0.0, radius]
        ring = 0.4 * radius
        position[start:start + 5] = [front, front + [ring, 0, 0], front + [0, ring, 0], front - [ring, 0, 0],
                                     front - [0, ring, 0]]
    return cKDTree(ict.vertices[keep]).query(position)[1].astype(np.int64)


def synthetic_faceverse_dict(ict: HeadModel, seed: int = 0) -> dict[str, np.ndarray]:
    """The FaceVerse-format dict (pass to ``np.save(path, d, allow_pickle=True)``)."""
    rng = np.random.default_rng(seed)
    material = np.asarray(ict.material_names)[ict.face_material[ict.triangle_face]]
    skin_tris = ict.triangles[np.isin(material, ["M_Face", "M_BackHead"])]
    skin = np.unique(skin_tris)
    eyes = [ict.regions["eyeball_left"], ict.regions["eyeball_right"]]
    keep = np.concatenate([skin, *eyes])
    remap = np.full(ict.n_vertices, -1, np.int64)
    remap[keep] = np.arange(len(keep))
    eye_tris = ict.triangles[np.isin(material, ["M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight"])]
    vertices = ict.vertices[keep].astype(np.float64)
    # One seamless chart: azimuth around the head's vertical axis and height; the face (azimuth 0) in the middle.
    # The axis follows the head's centre at each height (the neck lies behind the skull's centre: one fixed axis
    # would put the seam down the throat).
    height = vertices[:, 1]
    bins = np.linspace(height[: len(skin)].min(), height[: len(skin)].max(), 17)
    slot = np.clip(np.digitize(height[: len(skin)], bins) - 1, 0, 15)
    centres = np.array([vertices[: len(skin)][slot == b][:, [0, 2]].mean(0) if (slot == b).any() else [np.nan] * 2
                        for b in range(16)])
    known = ~np.isnan(centres[:, 0])
    mids = 0.5 * (bins[:-1] + bins[1:])
    axis_x = np.interp(height, mids[known], centres[known, 0])
    axis_z = np.interp(height, mids[known], centres[known, 1])
    azimuth = np.arctan2(vertices[:, 0] - axis_x, vertices[:, 2] - axis_z)
    uv = np.stack([0.5 + azimuth / (2 * np.pi), (height - height.min()) / np.ptp(height)], 1)
    tris = remap[skin_tris]
    wraps = np.ptp(uv[tris, 0], axis=1) > 0.5  # the back seam: a per-vertex chart has to cut the mesh there
    tris = np.concatenate([tris[~wraps], remap[eye_tris]])
    for offset, ball in ((len(skin), eyes[0]), (len(skin) + len(eyes[0]), eyes[1])):  # eyeballs: small discs
        part = slice(offset, offset + len(ball))
        local = vertices[part, :2] - vertices[part, :2].mean(0)
        corner = 0.02 if offset == len(skin) else 0.88
        uv[part] = corner + 0.05 + 0.05 * local / np.abs(local).max()
    id_mix, ex_mix = _mixes(ict, rng)
    ict_id = ict.identity_basis[:, keep].reshape(ict.n_identity, -1).T  # (N*3, 100), metres
    id_base = np.concatenate([ict_id, ict_id @ id_mix], 1)
    ict_ex = ict.expression_basis[:, keep].reshape(ict.n_expression, -1).T  # (N*3, 53)
    ex_base = ict_ex @ ex_mix
    skin_n = len(skin)
    return {
        "meanshape": (vertices * M_TO_CM).astype(np.float32).reshape(-1),
        "meantex": rng.uniform(80, 200, len(keep) * 3).astype(np.float32),
        "idBase": (id_base * M_TO_CM).astype(np.float32),
        "exBase": (ex_base * M_TO_CM).astype(np.float32),
        "texBase": rng.normal(0, 1, (len(keep) * 3, 251)).astype(np.float32),
        "tri": tris.astype(np.int64),
        "uv_per_ver": uv.astype(np.float32),
        "mediapipe_keypoints": _keypoints(ict, keep),
        "keypoints": remap[np.where(remap[ict.landmarks68] >= 0, ict.landmarks68, skin[0])].astype(np.int64),
        "ver_inds": np.array([skin_n, skin_n + len(eyes[0]), len(keep)], np.int64),
        "left_eye_exp": np.zeros((len(keep) * 3, 2), np.float32),
        "right_eye_exp": np.zeros((len(keep) * 3, 2), np.float32),
        "point_buf": np.zeros((len(keep), 8), np.int64),
    }


def _mixes(ict: HeadModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(100, 50) identity mixes and (53, 171) expression mixes: file column c = sum_k mix[k, c] * ICT column k."""
    id_mix = rng.normal(0, 0.3, (ict.n_identity, N_IDENTITY - ict.n_identity))
    usable = [i for i, name in enumerate(ict.expression_names) if name not in UNREPRESENTABLE]
    ex_mix = np.zeros((ict.n_expression, N_EXPRESSION))
    ex_mix[usable, np.arange(len(usable))] = 1.0
    for column in range(len(usable), N_EXPRESSION):
        chosen = rng.choice(usable, size=int(rng.integers(2, 4)), replace=False)
        ex_mix[chosen, column] = rng.uniform(0.3, 1.0, len(chosen))
    return id_mix, ex_mix


def synthetic_expression_truth(ict: HeadModel, seed: int = 0) -> np.ndarray:
    """(53, 171) the expression mixes the synthetic file of ``seed`` was built with (tests check the ARKit map and
    the tracked coefficients against it)."""
    return _mixes(ict, np.random.default_rng(seed))[1]
