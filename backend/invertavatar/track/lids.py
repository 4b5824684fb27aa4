"""The eyelid opening from the eyelid landmarks, after the whole-face fit.

The whole-face fit weighs 468 landmarks; the 32 on the eyelid contours are a few percent of its cost, so it leaves
the lids where the detector's blendshape scores and the rest of the face put them, and the avatar's eyes read
smaller than the person's (measured: rendered avatars, read back by the same detector, were 14–18 % less open than
their photos; docs/how-it-works.md). Here the lid shapes alone (`LID_SHAPES`: blink, wide and squint of each eye)
are solved again against the contour landmarks alone, pose, identity and every other expression held: a small
bounded Gauss–Newton problem (six unknowns) on the tracker's own residuals. Models without those shapes (FaceVerse's
unnamed expression basis) keep the whole-face fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..detect.landmark_schemes import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR
from ..headmodel import HeadModel
from ..render import axis_angle_to_matrix
from .correspondence import Correspondence, correspondence_for

LID_SHAPES = ("eyeBlink_L", "eyeBlink_R", "eyeWide_L", "eyeWide_R", "eyeSquint_L", "eyeSquint_R")
ITERATIONS = 5  # the lids move the contour points almost linearly: a few steps converge
RIDGE = 1e-4  # damping of the normal equations (their scale is ~1e-2)
#: Head yaw (degrees) up to which the refit is taken whole, and from which the whole-face fit is kept: turned away,
#: the far eye's contour is foreshortened and partly hidden, and the detector's lid points there are guesses
#: (measured on synthetic views at 43°: a half-closed lid read as a squint). In between the two are blended.
YAW_FULL, YAW_NONE = 15.0, 35.0


@dataclass(frozen=True)
class _Eye:
    """One eye's lid shapes (expression indices; squint -1 when absent)."""

    blink: int
    wide: int
    squint: int


@lru_cache(maxsize=4)
def lid_problem(model: HeadModel) -> tuple[Correspondence, tuple[_Eye, ...]] | None:
    """The eyelid-contour rows of the model's MediaPipe correspondence and each eye's lid shapes, or None when the
    model has no blink/wide shapes (cached: the landmark basis is cached by correspondence)."""
    names = model.expression_names
    eyes = tuple(_Eye(names.index(f"eyeBlink{side}"), names.index(f"eyeWide{side}"),
                      names.index(f"eyeSquint{side}") if f"eyeSquint{side}" in names else -1)
                 for side in ("_L", "_R") if f"eyeBlink{side}" in names and f"eyeWide{side}" in names)
    if not eyes:
        return None
    corr = correspondence_for(model, "mediapipe478")
    keep = np.isin(corr.landmark_ids, np.r_[RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR])
    if not keep.any():
        return None
    return Correspondence(corr.landmark_ids[keep], corr.corners[keep], corr.bary[keep], corr.weights[keep]), eyes


def _unknowns(expression: torch.Tensor, eyes: tuple[_Eye, ...]) -> np.ndarray:
    """Per eye: the upper lid as one signed opening (wide − blink: the two move the same points opposite ways, and
    both at once is no lid a person has), then the squint of the lower lid."""
    values = []
    for eye in eyes:
        values.append(float(expression[eye.wide] - expression[eye.blink]))
        if eye.squint >= 0:
            values.append(float(expression[eye.squint]))
    return np.array(values)


def _with(local: torch.Tensor, eyes: tuple[_Eye, ...], unknowns: np.ndarray) -> torch.Tensor:
    out, at = local.clone(), 0
    for eye in eyes:
        upper = float(np.clip(unknowns[at], -1.0, 1.0))
        out[6 + eye.wide], out[6 + eye.blink] = max(upper, 0.0), max(-upper, 0.0)
        at += 1
        if eye.squint >= 0:
            out[6 + eye.squint] = float(np.clip(unknowns[at], 0.0, 1.0))
            at += 1
    return out


def _columns(jac: np.ndarray, eyes: tuple[_Eye, ...], unknowns: np.ndarray) -> np.ndarray:
    """d residual / d unknowns from the expression columns ``jac`` (R, E)."""
    columns, at = [], 0
    for eye in eyes:
        upper = unknowns[at]
        if upper > 0:
            columns.append(jac[:, eye.wide])
        elif upper < 0:
            columns.append(-jac[:, eye.blink])
        else:  # at the neutral lid: the mean of both sides' slopes
            columns.append(0.5 * (jac[:, eye.wide] - jac[:, eye.blink]))
        at += 1
        if eye.squint >= 0:
            columns.append(jac[:, eye.squint])
            at += 1
    return np.stack(columns, 1)


def fit_lids(residual_fn, model: HeadModel, scheme: str, shared: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """``local`` (pose, expression) with the lid shapes refitted to the eyelid landmarks.

    ``residual_fn(corr)`` gives the tracker's (residual, jacobian) pair for a correspondence of this frame (see
    `Tracker._residual_fn`); ``shared`` is held. Returns ``local`` itself when there is nothing to fit.
    """
    problem = lid_problem(model) if scheme == "mediapipe478" else None
    if problem is None:
        return local
    corr, eyes = problem
    residual, jacobian = residual_fn(corr)
    unknowns = _unknowns(local[6:], eyes)
    best = _with(local, eyes, unknowns)
    r = residual(shared, best).double().numpy()
    best_cost = float(r @ r)
    for _ in range(ITERATIONS):
        jac = _columns(jacobian(shared, best, False).double().numpy()[:, 6:], eyes, unknowns)
        step = -np.linalg.solve(jac.T @ jac + RIDGE * np.eye(jac.shape[1]), jac.T @ r)
        trial_unknowns = unknowns + step
        trial = _with(local, eyes, trial_unknowns)
        r_trial = residual(shared, trial).double().numpy()
        if float(r_trial @ r_trial) >= best_cost:
            break
        best, r, best_cost, unknowns = trial, r_trial, float(r_trial @ r_trial), _unknowns(trial[6:], eyes)
    share = float(np.clip((YAW_NONE - abs(head_yaw(local[:3]))) / (YAW_NONE - YAW_FULL), 0.0, 1.0))
    return local + share * (best - local)


def head_yaw(rotvec: torch.Tensor) -> float:
    """Degrees the head is turned left or right of facing the camera, from the tracker's pose vector."""
    forward = axis_angle_to_matrix(rotvec.double())[:, 2]  # the model's +Z (out of the face), camera axes flipped
    return float(np.degrees(np.arctan2(float(forward[0]), float(forward[2]))))
