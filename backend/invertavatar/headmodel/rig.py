"""Derive the avatar's bones and skinning weights from a head model's own geometry.

No model ships a rig, so the joints are measured from the mesh: the eyes from the eyeball vertices, the jaw pivot
from the model's ``jawOpen`` shape (the rotation axis that best explains its displacement), the neck and head joints
from the neck region. The weights follow the same measurements, so the jaw bone reproduces ``jawOpen`` closely.
"""

from __future__ import annotations

import numpy as np

from .base import BONE_NAMES, Rig
from .eyes import eyeball_sphere

ROOT, NECK, HEAD, JAW, EYE_L, EYE_R = range(6)


def _rotate_x(points: np.ndarray, pivot_yz: np.ndarray, theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    y, z = points[:, 1] - pivot_yz[0], points[:, 2] - pivot_yz[1]
    return np.stack([points[:, 0], c * y - s * z + pivot_yz[0], s * y + c * z + pivot_yz[1]], 1)


def jaw_pivot(vertices: np.ndarray, jaw_delta: np.ndarray) -> tuple[np.ndarray, float]:
    """Pivot (3,) and angle (radians) of the rotation about the x axis that best explains ``jaw_delta``.

    A small-angle linear solve gives the start (dy = -θ (z - z_c), dz = θ (y - y_c) is linear in θ, θ z_c, θ y_c);
    a nonlinear least-squares refinement over the clearly moving vertices then fits the exact rotation.
    """
    from scipy.optimize import least_squares

    magnitude = np.linalg.norm(jaw_delta, axis=1)
    moving = magnitude > 0.5 * magnitude.max()
    v, d = vertices[moving].astype(np.float64), jaw_delta[moving].astype(np.float64)
    ones, zeros = np.ones(len(v)), np.zeros(len(v))
    a = np.concatenate([np.stack([-v[:, 2], ones, zeros], 1), np.stack([v[:, 1], zeros, -ones], 1)])
    b = np.concatenate([d[:, 1], d[:, 2]])
    theta, theta_zc, theta_yc = np.linalg.lstsq(a, b, rcond=None)[0]
    start = np.array([theta_yc / theta, theta_zc / theta, theta])
    target = v + d

    def residual(params: np.ndarray) -> np.ndarray:
        return (_rotate_x(v, params[:2], params[2]) - target).ravel()

    fit = least_squares(residual, start)
    pivot = np.array([0.0, fit.x[0], fit.x[1]], np.float32)
    return pivot, float(fit.x[2])


def build_rig(vertices: np.ndarray, regions: dict[str, np.ndarray], jaw_delta: np.ndarray | None) -> Rig:
    """Bones (root, neck, head, jaw, eye_L, eye_R) and weights for a head with eyeball regions.

    Without a ``jawOpen`` shape (``jaw_delta`` None) the jaw joint is placed below the eyes and gets no weights:
    nothing then tells which vertices the jaw carries, and guessing would deform the face wrongly.
    """
    n = len(vertices)
    # The eyes turn about their spheres' centres (not the mean vertex, which lies towards the cornea).
    eye_l = eyeball_sphere(vertices[regions["eyeball_left"]]).centre
    eye_r = eyeball_sphere(vertices[regions["eyeball_right"]]).centre
    if jaw_delta is None:
        jaw_delta = np.zeros_like(vertices)
        eye_height = float((eye_l[1] + eye_r[1]) / 2)
        pivot = np.array([0.0, eye_height - 0.045, float(min(eye_l[2], eye_r[2])) - 0.06], np.float32)
        angle = 0.0
    else:
        pivot, angle = jaw_pivot(vertices, jaw_delta)
    bottom = float(vertices[:, 1].min())
    # The head joint sits at the top of the neck, level with the jaw pivot's height and above the neck's centre.
    neck_ids = regions.get("head_and_neck", np.arange(n))
    neck_centre_z = float(np.median(vertices[neck_ids, 2]))
    head_joint = np.array([0.0, pivot[1] - 0.02, neck_centre_z], np.float32)
    neck_base = np.array([0.0, bottom, neck_centre_z], np.float32)
    eye_forward = np.array([0.0, 0.0, 0.02], np.float32)
    heads = np.stack([neck_base, neck_base, head_joint, pivot, eye_l, eye_r]).astype(np.float32)
    top = float(vertices[:, 1].max())
    tails = np.stack([
        neck_base + [0.0, 0.03, 0.0], head_joint, [0.0, top, head_joint[2]],
        [0.0, pivot[1] - 0.05, pivot[2] + 0.08], eye_l + eye_forward, eye_r + eye_forward,
    ]).astype(np.float32)

    weights = np.zeros((n, len(BONE_NAMES)), np.float32)
    # Jaw: the share of each vertex's jawOpen offset that the jaw rotation explains (teeth ~1, lips partly).
    jaw_share = np.zeros(n, np.float32)
    if angle != 0.0:
        swing = _rotate_x(vertices, pivot[1:], angle) - vertices
        jaw_share = np.clip((jaw_delta * swing).sum(1) / np.maximum((swing * swing).sum(1), 1e-12), 0.0, 1.0)
    carried = vertices[jaw_share > 0.5, 1]
    chin_y = float(carried.min()) if len(carried) else float(pivot[1]) - 0.08
    # Neck: below the chin, blending into the head over 6 cm.
    blend = np.clip((chin_y - vertices[:, 1]) / 0.06, 0.0, 1.0).astype(np.float32)
    weights[:, NECK] = blend
    weights[:, JAW] = jaw_share * (1.0 - blend)
    weights[:, HEAD] = 1.0 - blend - weights[:, JAW]
    for bone, region in ((EYE_L, "eyeball_left"), (EYE_R, "eyeball_right")):
        ids = regions[region]
        weights[ids] = 0.0
        weights[ids, bone] = 1.0
    return Rig(heads=heads, tails=tails, weights=weights)
