"""The eyelid opening from the eyelid landmarks, after the whole-face fit.

The whole-face fit weighs 468 landmarks; the 32 on the eyelid contours are a few percent of its cost, so it leaves
the lids where the detector's blendshape scores and the rest of the face put them, and the avatar's eyes read
smaller than the person's (measured: rendered avatars, read back by the same detector, were 14–18 % less open than
their photos; docs/how-it-works.md). Here the lid shapes alone (`LID_SHAPES`: blink, wide and squint of each eye)
are solved again against the contour landmarks alone, pose, identity and every other expression held: a small
bounded Gauss–Newton problem (six unknowns) on the tracker's own residuals, with the upper lid's landmarks placed
where a detector sees a closing lid (`_visible`). Models without those shapes (FaceVerse's unnamed expression basis)
keep the whole-face fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..detect.landmark_schemes import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, lid_pairs
from ..headmodel import HeadModel
from ..render import axis_angle_to_matrix
from .correspondence import Correspondence, correspondence_for

LID_SHAPES = ("eyeBlink_L", "eyeBlink_R", "eyeWide_L", "eyeWide_R", "eyeSquint_L", "eyeSquint_R")
ITERATIONS = 5  # the lids move the contour points almost linearly: a few steps converge
RIDGE = 1e-4  # damping of the normal equations (their scale is ~1e-2)
STEP = 1e-3  # central-difference step of the lid weights
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


@dataclass(frozen=True)
class _Rows:
    """The contour landmarks as the refit sees them: the upper lid's points on the margin (``upper``) and, facing
    each of them, the lower lid's surface point with the upper landmark's target (``closing``), the lower lid and
    the corners (``lower``); ``side`` says which eye (index into the eyes) each upper row belongs to."""

    upper: Correspondence
    closing: Correspondence
    lower: Correspondence
    side: np.ndarray


@lru_cache(maxsize=4)
def lid_problem(model: HeadModel) -> tuple[_Rows, tuple[_Eye, ...]] | None:
    """The eyelid-contour rows of the model's MediaPipe correspondence and each eye's lid shapes, or None when the
    model has no blink/wide shapes (cached: the landmark basis is cached by correspondence)."""
    names = model.expression_names
    sides = [(side, contour) for side, contour in (("_L", LEFT_EYE_CONTOUR), ("_R", RIGHT_EYE_CONTOUR))
             if f"eyeBlink{side}" in names and f"eyeWide{side}" in names]
    eyes = tuple(_Eye(names.index(f"eyeBlink{side}"), names.index(f"eyeWide{side}"),
                      names.index(f"eyeSquint{side}") if f"eyeSquint{side}" in names else -1) for side, _ in sides)
    if not eyes:
        return None
    corr = correspondence_for(model, "mediapipe478")
    row = {int(landmark): i for i, landmark in enumerate(corr.landmark_ids)}
    upper, lower, side = [], [], []
    for index, (_, contour) in enumerate(sides):
        for top, bottom in lid_pairs(contour):
            if top in row and bottom in row:
                upper.append(row[top])
                lower.append(row[bottom])
                side.append(index)
    contour = [row[int(i)] for i in np.r_[RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR] if int(i) in row]
    others = [i for i in contour if i not in upper]  # the lower lids and the corners
    if not upper:
        return None
    total = len(upper) + len(others)

    def take(ids, points=None):  # rows ``ids`` (targets and weights), on the surface points of ``points``
        points = ids if points is None else points
        weights = corr.weights[ids] * len(ids) / total  # the tracker divides by the row count: keep one scale
        return Correspondence(corr.landmark_ids[ids], corr.corners[points], corr.bary[points], weights)

    return _Rows(take(upper), take(upper, lower), take(others), np.array(side)), eyes


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


def _visible(residual_fns, rows: _Rows, eyes: tuple[_Eye, ...], shared: torch.Tensor,
             local: torch.Tensor) -> np.ndarray:
    """The contour residuals with the upper lid where a detector sees it: on the margin when open, moving to the lower
    lid as the eye closes (by the blink weight), so that a closed eye is the two contours meeting.

    The model's own blink carries ICT's upper margin 4 mm past the lower lid (the lid closes over it), and a raised
    lower lid (squint) meets it earlier still, so margin points drew apart again after half a blink: closed eyes on a
    devset clip were fitted as 0.3 blinks.
    """
    upper_fn, closing_fn, lower_fn = residual_fns
    blink = np.array([float(local[6 + eye.blink]) for eye in eyes])[rows.side]
    opened = local.clone()
    for eye in eyes:
        opened[6 + eye.blink] = 0.0
    margin = upper_fn(shared, opened).double().numpy().reshape(-1, 2)
    meeting = closing_fn(shared, local).double().numpy().reshape(-1, 2)
    upper = (1.0 - blink)[:, None] * margin + blink[:, None] * meeting
    return np.concatenate([upper.reshape(-1), lower_fn(shared, local).double().numpy()])


def fit_lids(residual_fn, model: HeadModel, scheme: str, shared: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """``local`` (pose, expression) with the lid shapes refitted to the eyelid landmarks.

    ``residual_fn(corr)`` gives the tracker's (residual, jacobian) pair for a correspondence of this frame (see
    `Tracker._residual_fn`); ``shared`` is held. Returns ``local`` itself when there is nothing to fit. The six
    unknowns are solved by Gauss–Newton with central differences (`_visible` is not linear in the blink).
    """
    problem = lid_problem(model) if scheme == "mediapipe478" else None
    if problem is None:
        return local
    rows, eyes = problem
    fns = tuple(residual_fn(corr)[0] for corr in (rows.upper, rows.closing, rows.lower))

    def residual(unknowns: np.ndarray) -> np.ndarray:
        return _visible(fns, rows, eyes, shared, _with(local, eyes, unknowns))

    unknowns = _unknowns(local[6:], eyes)
    r = residual(unknowns)
    best_cost = float(r @ r)
    for _ in range(ITERATIONS):
        jac = np.stack([(residual(unknowns + step) - residual(unknowns - step)) / (2 * STEP)
                        for step in np.eye(len(unknowns)) * STEP], 1)
        trial = unknowns - np.linalg.solve(jac.T @ jac + RIDGE * np.eye(jac.shape[1]), jac.T @ r)
        trial = _unknowns(_with(local, eyes, trial)[6:], eyes)  # within the shapes' bounds
        r_trial = residual(trial)
        if float(r_trial @ r_trial) >= best_cost:
            break
        unknowns, r, best_cost = trial, r_trial, float(r_trial @ r_trial)
    best = _with(local, eyes, unknowns)
    share = float(np.clip((YAW_NONE - abs(head_yaw(local[:3]))) / (YAW_NONE - YAW_FULL), 0.0, 1.0))
    return local + share * (best - local)


def head_yaw(rotvec: torch.Tensor) -> float:
    """Degrees the head is turned left or right of facing the camera, from the tracker's pose vector."""
    forward = axis_angle_to_matrix(rotvec.double())[:, 2]  # the model's +Z (out of the face), camera axes flipped
    return float(np.degrees(np.arctan2(float(forward[0]), float(forward[2]))))
