"""Which head-model vertex each MediaPipe landmark sits on.

FaceVerse ships this table (``mediapipe_keypoints``). For other models it is measured: MediaPipe's canonical face mesh
is aligned to the model's neutral face by a similarity transform over the shared iBUG-68 points (the jaw contour left
out, since it is a silhouette rather than a surface point), then every canonical vertex takes the nearest model face
vertex. Pairs farther apart than ``MAX_DISTANCE`` after alignment are dropped rather than trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..detect.landmark_schemes import MEDIAPIPE_TO_IBUG68
from ..headmodel import HeadModel

MAX_DISTANCE = 0.006  # metres
INNER_IBUG = np.arange(17, 68)


@dataclass(frozen=True, eq=False)
class Correspondence:
    """Detector point ``landmark_ids[l]`` sits at the surface point ``sum_k bary[l, k] * vertex[corners[l, k]]``.

    ``weights`` say how much each pair is trusted. A pair on a vertex has that vertex three times with (1, 0, 0).
    """

    landmark_ids: np.ndarray
    corners: np.ndarray
    bary: np.ndarray
    weights: np.ndarray

    @classmethod
    def on_vertices(cls, landmark_ids: np.ndarray, vertex_ids: np.ndarray, weights: np.ndarray) -> "Correspondence":
        corners = np.repeat(np.asarray(vertex_ids, np.int64)[:, None], 3, 1)
        bary = np.zeros((len(corners), 3), np.float32)
        bary[:, 0] = 1.0
        return cls(np.asarray(landmark_ids), corners, bary, np.asarray(weights, np.float32))


_BASES: dict = {}


def landmark_basis(model: HeadModel, corr: Correspondence, device) -> dict:
    """Neutral positions (L,3) and identity/expression bases (I,L,3)/(E,L,3) of the surface points (cached)."""
    import torch

    key = (id(model), id(corr), str(device))
    if key not in _BASES:
        sub = model._subset(corr.corners.reshape(-1), device)
        bary = torch.from_numpy(np.asarray(corr.bary, np.float32)).to(device)
        length = len(corr.corners)

        def mix(tensor):
            return (tensor.reshape(*tensor.shape[:-2], length, 3, 3) * bary[..., None]).sum(-2)

        _BASES[key] = {"vertices": mix(sub["vertices"]), "identity": mix(sub["identity"]),
                       "expression": mix(sub["expression"])}
    return _BASES[key]


def landmark_points(basis: dict, identity, expression):
    """Surface points (B, L, 3) for identity (B, I) and expression (B, E)."""
    import torch

    out = basis["vertices"].unsqueeze(0)
    out = out + torch.einsum("bi,ilc->blc", identity, basis["identity"])
    return out + torch.einsum("be,elc->blc", expression, basis["expression"])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R, translation t minimising |s R source + t - target|² (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rotation = u @ fix @ vt
    scale = float((sigma * np.diag(fix)).sum() / (a * a).sum())
    return scale, rotation, mu_t - scale * rotation @ mu_s


def mediapipe_correspondence(model: HeadModel, canonical_vertices: np.ndarray) -> Correspondence:
    """Measure the MediaPipe-468 → model-vertex table for ``model`` (see module docstring)."""
    from scipy.spatial import cKDTree

    if "mediapipe_keypoints" in model.extras:
        ids = np.asarray(model.extras["mediapipe_keypoints"])[:468]
        return Correspondence.on_vertices(np.arange(len(ids)), ids, np.ones(len(ids), np.float32))
    source = canonical_vertices[MEDIAPIPE_TO_IBUG68[INNER_IBUG]].astype(np.float64)
    target = model.vertices[model.landmarks68[INNER_IBUG]].astype(np.float64)
    scale, rotation, shift = similarity_transform(source, target)
    aligned = (scale * canonical_vertices @ rotation.T) + shift
    face = model.regions.get("face", np.arange(model.n_vertices))
    distance, nearest = cKDTree(model.vertices[face]).query(aligned)
    keep = distance < MAX_DISTANCE
    weights = np.clip(1.0 - distance[keep] / MAX_DISTANCE, 0.2, 1.0).astype(np.float32)
    return Correspondence.on_vertices(np.nonzero(keep)[0], face[nearest[keep]], weights)


@lru_cache(maxsize=4)
def correspondence_for(model: HeadModel, scheme: str) -> Correspondence:
    """The table for a detector scheme: ``mediapipe478`` (dense, measured) or ``ibug68`` (the model's own list)."""
    if scheme == "ibug68":
        return Correspondence.on_vertices(np.arange(68), model.landmarks68, np.ones(68, np.float32))
    calibrated = load_calibration(model)
    if calibrated is not None:
        return calibrated
    from .. import assets
    from ..detect.mediapipe_mesh import canonical_face_mesh

    canonical, _, _ = canonical_face_mesh(assets.find_asset(assets.LANDMARKER))
    return mediapipe_correspondence(model, np.asarray(canonical, np.float64))


CALIBRATION_DIR = Path(__file__).parent / "data"


def calibration_path(model: HeadModel) -> Path:
    return CALIBRATION_DIR / f"mediapipe-{model.name}-{model.checksum[:16]}.npz"


def load_calibration(model: HeadModel) -> Correspondence | None:
    """The calibrated surface-point table for this exact model (track/calibrate.py makes it), if shipped."""
    path = calibration_path(model)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return Correspondence(data["landmark_ids"], data["corners"], data["bary"], data["weights"])
