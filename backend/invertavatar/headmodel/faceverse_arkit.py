"""ARKit-52 for a FaceVerse file without ``exBase_52``: a linear 52 → E map fitted through ICT's ARKit shapes.

1. Dense ICT ↔ FaceVerse correspondence by landmark-guided non-rigid registration of the two neutral heads: ICT's
   identity and a similarity fitted to the MediaPipe points both models carry (ICT's calibrated table, the file's
   ``mediapipe_keypoints``), a Gaussian radial-basis warp taking the landmark residuals to every ICT face vertex,
   then a few smoothed closest-point steps onto the FaceVerse skin.
2. Each ICT ARKit shape, carried to the FaceVerse skin through the correspondence (rotated and scaled with the
   similarity), is fitted by non-negative FaceVerse expression coefficients (ridge-regularised, as the reference keeps
   its coefficients non-negative). Column k of the map is that fit.
3. Every shape's relative residual |B w − d| / |d| is kept; a shape that the fit cannot represent (residual above
   ``MAX_RESIDUAL``), that ICT lacks, or whose motion is not on the corresponded skin (gaze: FaceVerse turns its
   eyeballs instead) is named in ``missing`` and gets no weights.

Computed once per (FaceVerse file, ICT model) and cached in ``INVERTAVATAR_HOME/cache``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arkit import ARKIT_NAMES, ArkitMap
from .base import HeadModel

IDENTITY_ROUNDS, IDENTITY_RIDGE = 3, 1e-5  # ICT identity fitted to the FaceVerse landmarks before the warp
RBF_SIGMA = 0.025  # metres: reach of one landmark's residual in the warp
RBF_RIDGE = 1e-3
ICP_STEPS, ICP_REACH, ICP_NEIGHBOURS = 4, 0.012, 16
MATCH_DISTANCE = 0.006  # metres: a FaceVerse vertex farther than this from the warped ICT face has no partner
FIT_RIDGE = 1e-4  # relative to the basis' mean energy
# Calibrated on the synthetic file (docs/faceverse.md): its representable shapes fit to 5-18 %, the shapes left out
# of its basis to 37-41 % (other components mimic part of their motion).
MAX_RESIDUAL = 0.3
MIN_SKIN_SHARE = 0.2  # of an ICT shape's motion that must lie on the corresponded skin for a fit to mean anything
CACHE_VERSION = 2


@dataclass
class ArkitTransfer:
    """The fitted map and how well each shape fits."""

    weights: np.ndarray  # (52, E) FaceVerse coefficients of each ARKit shape at weight 1
    residual: np.ndarray  # (52,) relative residual (nan for shapes with nothing to fit)
    missing: tuple[str, ...]
    reasons: dict[str, str]
    matched_vertices: int

    def arkit_map(self) -> ArkitMap:
        weights = self.weights.copy()
        for name in self.missing:
            weights[ARKIT_NAMES.index(name)] = 0.0
        return ArkitMap(matrix=weights.T.astype(np.float32), to_arkit=weights.astype(np.float32),
                        missing=self.missing, from_model=_projection(weights))


def _projection(weights: np.ndarray) -> np.ndarray:
    """(52, E): ARKit weights from FaceVerse coefficients, the ridge least-squares inverse of the map."""
    gram = weights @ weights.T
    return np.linalg.solve(gram + 1e-3 * np.trace(gram) / len(gram) * np.eye(len(gram)), weights).astype(np.float32)


def _ict_landmarks(ict: HeadModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe ids, their ICT surface points (L, 3) and the identity basis there (I, L, 3)."""
    from ..track.correspondence import correspondence_for

    table = correspondence_for(ict, "mediapipe478")
    points = (ict.vertices[table.corners] * table.bary[..., None]).sum(1)
    basis = (ict.identity_basis[:, table.corners] * table.bary[None, ..., None]).sum(2)
    return np.asarray(table.landmark_ids), points, basis


def _ict_shaped_like(ict: HeadModel, fv_points: np.ndarray
                     ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    """ICT's face vertices with the identity that best matches the FaceVerse landmarks, and the similarity
    (scale, rotation, shift) onto them: a different head shape would otherwise be left to the warp alone (lips
    and eyelids, where ARKit shapes live, register worst)."""
    from ..track.correspondence import similarity_transform

    _, points, basis = _ict_landmarks(ict)
    coeffs = np.zeros(ict.n_identity)
    for _ in range(IDENTITY_ROUNDS):
        shaped = points + np.einsum("i,ilc->lc", coeffs, basis)
        scale, rotation, shift = similarity_transform(shaped.astype(np.float64), fv_points.astype(np.float64))
        # FaceVerse landmarks back in ICT's frame; linear ridge fit of the identity coefficients.
        target = ((fv_points - shift) @ rotation) / scale - points
        design = basis.reshape(ict.n_identity, -1).T
        coeffs = np.linalg.solve(design.T @ design + IDENTITY_RIDGE * np.eye(ict.n_identity),
                                 design.T @ target.reshape(-1))
    shaped = points + np.einsum("i,ilc->lc", coeffs, basis)
    scale, rotation, shift = similarity_transform(shaped.astype(np.float64), fv_points.astype(np.float64))
    face = np.asarray(ict.regions["face"])
    vertices = ict.vertices[face] + np.einsum("i,ivc->vc", coeffs, ict.identity_basis[:, face])
    return vertices, scale, rotation, shift, shaped


def register(ict: HeadModel, faceverse: HeadModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """(fv_ids, ict_ids (J, 4), idw weights (J, 4), scale, rotation): FaceVerse skin vertex j ↔ ICT face vertices."""
    from scipy.spatial import cKDTree

    ids = _ict_landmarks(ict)[0]
    fv_points = faceverse.vertices[np.asarray(faceverse.extras["mediapipe_keypoints"])[ids]]
    shaped_face, scale, rotation, shift, ict_points = _ict_shaped_like(ict, fv_points)
    face = np.asarray(ict.regions["face"])
    warped = scale * shaped_face.astype(np.float64) @ rotation.T + shift
    aligned_points = scale * ict_points @ rotation.T + shift
    residual = fv_points - aligned_points

    def kernel(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * RBF_SIGMA ** 2))

    coeffs = np.linalg.solve(kernel(aligned_points, aligned_points) + RBF_RIDGE * np.eye(len(ids)), residual)
    warped += kernel(warped, aligned_points) @ coeffs
    skin = np.asarray(faceverse.regions["face"])
    fv_tree = cKDTree(faceverse.vertices[skin])
    for _ in range(ICP_STEPS):
        distance, nearest = fv_tree.query(warped)
        offset = faceverse.vertices[skin][nearest] - warped
        offset[distance > ICP_REACH] = 0.0
        # Smooth the pull over neighbouring vertices: the warp moves the surface, it does not collapse it.
        _, neighbours = cKDTree(warped).query(warped, ICP_NEIGHBOURS)
        warped += 0.5 * offset[neighbours].mean(1)
    distance, nearest = cKDTree(warped).query(faceverse.vertices[skin], 4)
    keep = distance[:, 0] < MATCH_DISTANCE
    inverse = 1.0 / np.maximum(distance[keep], 1e-6)
    return skin[keep], face[nearest[keep]], inverse / inverse.sum(1, keepdims=True), scale, rotation


def fit_transfer(ict: HeadModel, faceverse: HeadModel) -> ArkitTransfer:
    """Register the heads and fit every ARKit shape (see module docstring)."""
    from scipy.optimize import nnls

    fv_ids, ict_ids, idw, scale, rotation = register(ict, faceverse)
    ict_deltas = ict.arkit_deltas()  # (52, V, 3)
    carried = np.einsum("kjnc,jn->kjc", ict_deltas[:, ict_ids], idw) @ (scale * rotation).T  # (52, J, 3)
    basis = np.asarray(faceverse.expression_basis, np.float64)[:, fv_ids].reshape(faceverse.n_expression, -1).T
    gram = basis.T @ basis
    gram += FIT_RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
    factor = np.linalg.cholesky(gram)
    weights = np.zeros((len(ARKIT_NAMES), faceverse.n_expression))
    residual = np.full(len(ARKIT_NAMES), np.nan)
    reasons: dict[str, str] = {}
    total = np.sqrt((ict_deltas.astype(np.float64) ** 2).sum((1, 2)))
    for k, name in enumerate(ARKIT_NAMES):
        target = carried[k].reshape(-1)
        energy = float(target @ target)
        if total[k] == 0.0:
            reasons[name] = "ICT has no such shape"
            continue
        if np.sqrt(energy) < MIN_SKIN_SHARE * scale * total[k]:
            reasons[name] = "its motion is not on the face skin (FaceVerse turns its eyeballs for gaze)"
            continue
        # min |B w - d|² + ridge |w|², w >= 0, solved in the 171-dimensional normal form: |Lᵀw - L⁻¹Bᵀd|².
        rhs = np.linalg.solve(factor, basis.T @ target)
        w, _ = nnls(factor.T, rhs)
        error = float(w @ (basis.T @ basis) @ w - 2 * (basis.T @ target) @ w + energy)
        residual[k] = np.sqrt(max(error, 0.0) / energy)
        weights[k] = w
        if residual[k] > MAX_RESIDUAL:
            reasons[name] = f"FaceVerse's expressions fit it only to a residual of {residual[k]:.0%}"
    missing = tuple(name for name in ARKIT_NAMES if name in reasons)
    return ArkitTransfer(weights.astype(np.float32), residual, missing, reasons, int(len(fv_ids)))


def with_arkit_transfer(faceverse: HeadModel, ict: HeadModel) -> HeadModel:
    """Give a FaceVerse model without ``exBase_52`` its fitted ARKit map (in place; the model is returned)."""
    if faceverse.arkit.missing != ARKIT_NAMES or "mediapipe_keypoints" not in faceverse.extras:
        return faceverse  # an ARKit basis of its own, or nothing to register with
    transfer = cached_transfer(ict, faceverse)
    faceverse.arkit = transfer.arkit_map()
    faceverse.extras["arkit_residual"] = transfer.residual.astype(np.float32)
    return faceverse


def cached_transfer(ict: HeadModel, faceverse: HeadModel) -> ArkitTransfer:
    """:func:`fit_transfer`, computed once per file pair and kept in the cache folder."""
    from .. import paths

    cache = paths.home() / "cache" / f"faceverse-arkit-v{CACHE_VERSION}-{faceverse.checksum[:16]}-{ict.checksum[:8]}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as saved:
                reasons = dict(zip(saved["missing"].tolist(), saved["reasons"].tolist()))
                return ArkitTransfer(saved["weights"], saved["residual"], tuple(saved["missing"].tolist()), reasons,
                                     int(saved["matched"]))
        except (OSError, ValueError, KeyError):
            cache.unlink(missing_ok=True)
    transfer = fit_transfer(ict, faceverse)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, weights=transfer.weights, residual=transfer.residual, missing=np.array(transfer.missing, str),
             reasons=np.array([transfer.reasons[n] for n in transfer.missing], str), matched=transfer.matched_vertices)
    tmp.replace(cache)
    return transfer
