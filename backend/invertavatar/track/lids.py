"""The eyelid opening from the eyelid landmarks, after the whole-face fit.

The whole-face fit weighs 468 landmarks; the 32 on the eyelid contours are a few percent of its cost, so it leaves
the lids where the detector's blendshape scores and the rest of the face put them, and the avatar's eyes read
smaller than the person's (measured: rendered avatars, read back by the same detector, were 14–18 % less open than
their photos; docs/how-it-works.md). Here the lid shapes alone (`LID_SHAPES`: blink, wide and squint of each eye)
are solved again against the contour landmarks alone, pose, identity and every other expression held: a small
bounded Gauss–Newton problem (six unknowns) on the tracker's own residuals and Jacobians, with the upper lid's
landmarks placed where a detector sees a closing lid (`_visible`). Models without those shapes (FaceVerse's unnamed
expression basis) keep the whole-face fit.
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
ITERATIONS = 3  # the lids move the contour points almost linearly: a few steps converge
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


@dataclass(frozen=True)
class _Rows:
    """The contour landmarks as the refit sees them: the upper lid's points on the margin (``upper``); then, in one
    correspondence (``meeting``, evaluated at one expression), the lower lid's surface points facing them with the
    upper landmarks' targets, followed by the lower lid and the corners; ``side`` says which eye (index into the
    eyes) each upper row belongs to."""

    upper: Correspondence
    meeting: Correspondence
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

    return _Rows(take(upper), take(upper + others, lower + others), np.array(side)), eyes


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


def _opened(local: torch.Tensor, eyes: tuple[_Eye, ...]) -> torch.Tensor:
    """``local`` with both blinks at 0: where the upper lid's margin would be."""
    opened = local.clone()
    for eye in eyes:
        opened[6 + eye.blink] = 0.0
    return opened


def _visible(fns, rows: _Rows, eyes: tuple[_Eye, ...], shared: torch.Tensor, local: torch.Tensor,
             with_jacobian: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The contour residuals with the upper lid where a detector sees it, and (``with_jacobian``) their derivatives
    by the unknowns (`_unknowns`): on the margin when open, moving onto the lower lid as the eye closes (by the blink
    weight), so that a shut eye is the two contours meeting.

    The model's own blink carries ICT's upper margin 4 mm past the lower lid (the lid closes over it), and a raised
    lower lid (squint) meets it earlier still, so margin points drew apart again after half a blink: shut eyes on a
    devset clip were fitted as 0.22–0.38 blinks. ``fns`` are the tracker's (residual, jacobian) pairs of
    ``rows.upper`` and ``rows.meeting``.
    """
    (upper_r, upper_j), (meeting_r, meeting_j) = fns
    blink = np.repeat(np.array([float(local[6 + eye.blink]) for eye in eyes])[rows.side], 2)[:, None]
    n = len(blink)
    opened = _opened(local, eyes)
    margin = upper_r(shared, opened).double().numpy()[:, None]
    both = meeting_r(shared, local).double().numpy()
    meeting = both[:n, None]
    residual = np.concatenate([((1.0 - blink) * margin + blink * meeting)[:, 0], both[n:]])
    if not with_jacobian:
        return residual, None
    # d/d expression of each part (tracker's analytic Jacobians), then the chain to the unknowns.
    margin_j = upper_j(shared, opened, False).double().numpy()[:, 6:]
    margin_j[:, [eye.blink for eye in eyes]] = 0.0  # the margin is taken with the blinks at 0
    both_j = meeting_j(shared, local, False).double().numpy()[:, 6:]
    upper_expr = (1.0 - blink) * margin_j + blink * both_j[:n]
    lower_expr = both_j[n:]
    mine = np.repeat(rows.side, 2)
    columns = []
    for index, eye in enumerate(eyes):
        own = (mine == index)[:, None]
        by_blink = np.r_[upper_expr[:, eye.blink] + own[:, 0] * (meeting - margin)[:, 0], lower_expr[:, eye.blink]]
        by_wide = np.r_[upper_expr[:, eye.wide], lower_expr[:, eye.wide]]
        upper = float(local[6 + eye.wide] - local[6 + eye.blink])
        # The signed opening: wide when positive, blink (opposite way) when negative, their mean slope at 0.
        columns.append(by_wide if upper > 0 else -by_blink if upper < 0 else 0.5 * (by_wide - by_blink))
        if eye.squint >= 0:
            columns.append(np.r_[upper_expr[:, eye.squint], lower_expr[:, eye.squint]])
    return residual, np.stack(columns, 1)


def fit_lids(residual_fn, model: HeadModel, scheme: str, shared: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """``local`` (pose, expression) with the lid shapes refitted to the eyelid landmarks.

    ``residual_fn(corr)`` gives the tracker's (residual, jacobian) pair for a correspondence of this frame (see
    `Tracker._residual_fn`); ``shared`` is held. Returns ``local`` itself when there is nothing to fit.
    """
    problem = lid_problem(model) if scheme == "mediapipe478" else None
    if problem is None:
        return local
    rows, eyes = problem
    fns = (residual_fn(rows.upper), residual_fn(rows.meeting))
    unknowns = _unknowns(local[6:], eyes)
    best = _with(local, eyes, unknowns)
    r, jac = _visible(fns, rows, eyes, shared, best, with_jacobian=True)
    best_cost = float(r @ r)
    for _ in range(ITERATIONS):
        step = -np.linalg.solve(jac.T @ jac + RIDGE * np.eye(jac.shape[1]), jac.T @ r)
        trial = _with(local, eyes, unknowns + step)  # within the shapes' bounds
        r_trial, jac_trial = _visible(fns, rows, eyes, shared, trial, with_jacobian=True)
        cost = float(r_trial @ r_trial)
        if cost >= best_cost:
            break
        gain = best_cost - cost
        best, r, jac, best_cost, unknowns = trial, r_trial, jac_trial, cost, _unknowns(trial[6:], eyes)
        if gain < 1e-2 * best_cost:  # converged: a step gains under 1 %
            break
    share = float(np.clip((YAW_NONE - abs(head_yaw(local[:3]))) / (YAW_NONE - YAW_FULL), 0.0, 1.0))
    return local + share * (best - local)


def head_yaw(rotvec: torch.Tensor) -> float:
    """Degrees the head is turned left or right of facing the camera, from the tracker's pose vector."""
    forward = axis_angle_to_matrix(rotvec.double())[:, 2]  # the model's +Z (out of the face), camera axes flipped
    return float(np.degrees(np.arctan2(float(forward[0]), float(forward[2]))))
