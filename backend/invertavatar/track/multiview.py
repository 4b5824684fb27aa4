"""Identity beyond landmarks: the keyframes of a job agree on the colour of every surface point they see.

Landmarks pin down the identity only where the detector puts points, and a detector reads a face with a bias of a
few pixels; with landmarks alone the neutral shape stops improving after a few views. Once a job's keyframes are
tracked, `refine_identity` therefore solves them again *together*: the shared identity, and each keyframe's pose and
expression, move so that each sampled point of the face skin projects to the same colour in every keyframe that
sees it (multi-view photo-consistency: the spread of a point's colours around their mean, with the keyframe's
visibility and viewing angle as weights), while the landmark residuals and the Gaussian identity state from the
avatar's earlier jobs keep the solution anchored. It runs coarse to fine on blurred copies of the face
crops (the blur scaled to the eye distance), so the colour gradients reach over the landmark fit's pixel errors.

The cost is robust and in the data's own units: at each level the median spread of the points' colours is the
noise, and a point costs log(1 + spread / noise), so hair over the skin in one keyframe, a glint or a lip that
moved counts little more than a point a few times the noise off. A refinement that would push any keyframe's
landmark error past `MultiViewConfig.max_landmark_error` (and above twice its landmark-only value) is not taken. Fewer than
`MultiViewConfig.min_views` keyframes are left alone: the points two views share can be explained by a change of
expression as well as by shape (measured on synthetic views: two views 26° either side of frontal, one smiling,
one with the jaw open, made the shape worse, 1.45 → 1.66 mm, when refining an avatar made from a third).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..detect import Detection
from ..render import axis_angle_to_matrix, rasterize, sample_image
from ..render.interpolate import vertex_normals
from .correspondence import correspondence_for
from .tracker import FLIP, FrameFit, Tracker, expression_to_arkit, inter_ocular, pose_vector
from .state import TrackerState


@dataclass(frozen=True)
class MultiViewConfig:
    """Weights and schedule of the multi-view refinement (measured in docs/how-it-works.md, "Accuracy")."""

    weight: float = 0.02  # the robust colour cost (in units of its own noise) against the whitened landmark residuals
    shading_invariant: bool = False  # compare each crop's `detail` instead of its colours
    blur_iod: tuple[float, ...] = (0.04, 0.02, 0.01)  # Gaussian blur of each level, in eye distances
    steps: int = 90  # Adam steps per level
    rate_identity: float = 0.03  # Adam step sizes: identity coefficients (unit prior), ...
    rate_local: float = 0.002  # ... and pose (radians, metres) and expression weights
    min_cosine: float = 0.3  # surface points seen more obliquely than this do not take part
    depth_tolerance: float = 0.003  # metres behind the visible surface that still count as visible
    min_views: int = 3  # fewer keyframes share too few points: expression explains them as well as shape
    max_landmark_error: float = 0.05  # share of the eye distance a refined keyframe may not exceed (see module doc)


@dataclass
class KeyframeView:
    """One keyframe as the refinement sees it: the full-frame detection and fit (landmarks), and a crop of the frame
    (colours) with its top-left corner ``offset`` in the frame."""

    detection: Detection
    fit: FrameFit
    crop: np.ndarray
    offset: tuple[int, int] = (0, 0)


@dataclass
class MultiViewResult:
    """What the refinement did: ``applied`` is False when it was skipped or its result refused (``reason``)."""

    applied: bool
    reason: str = ""
    # The robust colour cost over the shared points at the finest level, in units of that level's noise: what the
    # refinement minimises (the plain variance is dominated by the outliers the robust form discounts).
    photo_before: float = 0.0
    photo_after: float = 0.0
    landmark_error_before: list[float] = field(default_factory=list)  # per keyframe, share of the eye distance
    landmark_error_after: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        """For the bundle's manifest."""
        out = {"applied": self.applied, "reason": self.reason}
        if self.landmark_error_before:
            out.update(photo_cost_before=round(self.photo_before, 7), photo_cost_after=round(self.photo_after, 7),
                       landmark_error_iod_before=round(float(np.mean(self.landmark_error_before)), 5),
                       landmark_error_iod_after=round(float(np.mean(self.landmark_error_after or [0.0])), 5))
        return out


def detail(crop: np.ndarray, sigma: float) -> np.ndarray:
    """The picture's detail at scale ``sigma`` (pixels): the crop blurred by ``sigma`` over the crop blurred by four
    times that, about 1 everywhere. Smooth shading and exposure multiply both and cancel, so keyframes lit differently
    (a head turning under a fixed lamp, photos of different exposure) still agree where their shapes do."""
    import cv2

    picture = crop[..., :3].astype(np.float32) / 255.0 + 1.0 / 255.0
    return (cv2.GaussianBlur(picture, (0, 0), sigma) / cv2.GaussianBlur(picture, (0, 0), 4 * sigma)).astype(np.float32)


def _sample_vertices(tracker: Tracker) -> np.ndarray:
    """The skin vertices whose colours are compared (the model's fitting region, else its face)."""
    regions = tracker.model.regions
    for name in ("fitting", "face"):
        if name in regions and len(regions[name]):
            return np.asarray(regions[name], np.int64)
    return np.arange(tracker.model.n_vertices)


class _Problem:
    """The joint cost of one job's keyframes; parameters are torch tensors the optimiser moves."""

    def __init__(self, tracker: Tracker, views: list[KeyframeView], prior: TrackerState,
                 config: MultiViewConfig) -> None:
        self.tracker, self.views, self.config = tracker, views, config
        model = tracker.model
        self.n_id = model.n_identity
        self.residuals = [tracker._residual_fn(v.detection, correspondence_for(model, v.detection.scheme),
                                               v.fit.image_size)[0] for v in views]
        self.prior_mean = torch.from_numpy(prior.mean).float()
        self.prior_info = torch.from_numpy(prior.information).float()
        self.samples = _sample_vertices(tracker)
        self.basis = model._subset(self.samples, tracker.device)
        from ..texture.fusion import opaque_triangles

        self.opaque = torch.from_numpy(opaque_triangles(model))
        self.triangles = torch.from_numpy(model.triangles)
        self.iod = [max(inter_ocular(v.detection.landmarks, v.detection.scheme), 1.0) for v in views]
        self.shared = torch.tensor(np.r_[tracker.identity, tracker.state.mean[-1]], dtype=torch.float32)
        self.locals = []
        for v in views:
            self.locals.append(torch.tensor(np.r_[pose_vector(v.fit), v.fit.expression], dtype=torch.float32))
        # Per keyframe, for projecting all keyframes at once: the focal length's scale and the crop's principal point.
        self.scales = torch.tensor([float(max(v.fit.image_size)) for v in views])
        self.centres = torch.tensor([[(v.fit.principal[0] if v.fit.principal else v.fit.image_size[1] / 2) - v.offset[0],
                                      (v.fit.principal[1] if v.fit.principal else v.fit.image_size[0] / 2) - v.offset[1]]
                                     for v in views])

    # ------------------------------------------------------------------------------------------------ geometry
    def project(self, shared: torch.Tensor, locals_: torch.Tensor, points: torch.Tensor,
                views: slice = slice(None)):
        """Crop pixels (K, N, 2) and camera points (K, N, 3) of model-space ``points`` (K, N, 3) in the keyframes
        ``views`` whose poses are ``locals_`` (K, P)."""
        rotation = FLIP @ axis_angle_to_matrix(locals_[:, :3])
        cam = torch.einsum("kvc,kdc->kvd", points, rotation) + locals_[:, None, 3:6]
        focal = torch.exp(shared[self.n_id]) * self.scales[views]
        return focal[:, None, None] * cam[..., :2] / cam[..., 2:3].clamp(min=1e-3) + self.centres[views, None], cam

    def weights(self, index: int, local: torch.Tensor, margin: int) -> torch.Tensor:
        """(S,) visibility × obliquity weight of the sample points in keyframe ``index`` at the current solution; points
        within ``margin`` pixels of the head's outline take no part (a misaligned outline would show background)."""
        import cv2

        cfg, model = self.config, self.tracker.model
        with torch.no_grad():
            vertices = model.evaluate(self.shared[:self.n_id][None], local[6:][None])[0]
            pixels, cam = self.project(self.shared, local[None], vertices[None], slice(index, index + 1))
            pixels, cam = pixels[0], cam[0]
            height, width = self.views[index].crop.shape[:2]
            depth = rasterize(torch.cat([pixels, cam[:, 2:3]], 1)[None], self.opaque, height, width).depth[0]
            normals = vertex_normals(cam, self.triangles)[self.samples]
            p, point = pixels[self.samples], cam[self.samples]
            inside = (p[:, 0] >= 0) & (p[:, 0] < width) & (p[:, 1] >= 0) & (p[:, 1] < height)
            col = p[:, 0].floor().long().clamp(0, width - 1)
            row = p[:, 1].floor().long().clamp(0, height - 1)
            covered = (depth > 0).numpy().astype(np.uint8)
            interior = torch.from_numpy(cv2.erode(covered, np.ones((2 * margin + 1,) * 2, np.uint8)) > 0)
            surface = torch.where(interior, depth, torch.zeros_like(depth))[row, col]
            cosine = (normals * torch.nn.functional.normalize(-point, dim=1)).sum(1)
            visible = inside & (surface > 0) & (point[:, 2] <= surface + cfg.depth_tolerance) & (cosine > cfg.min_cosine)
            weight = torch.where(visible, ((cosine - cfg.min_cosine) / (1 - cfg.min_cosine)).square(),
                                 torch.zeros_like(cosine))
        return weight

    # ------------------------------------------------------------------------------------------------ the costs
    def landmark_cost(self, shared: torch.Tensor, locals_: list[torch.Tensor]) -> torch.Tensor:
        return sum(r(shared, lo).square().sum() for r, lo in zip(self.residuals, locals_))

    def landmark_errors(self) -> list[float]:
        with torch.no_grad():
            return [float(r(self.shared, lo).square().sum().sqrt()) for r, lo in zip(self.residuals, self.locals)]

    def spread(self, shared: torch.Tensor, locals_: torch.Tensor, pictures: torch.Tensor,
               weights: torch.Tensor) -> torch.Tensor:
        """(K, S) squared distance of each keyframe's colour of each point from the point's weighted mean colour.

        ``locals_`` (K, P) every keyframe's pose and expression, ``pictures`` (K, H, W, 3) the crops (padded to one
        size, see `_stacked`), ``weights`` (K, S) as `weights` gives them (zero = unseen). All keyframes at once.
        """
        basis = self.basis
        neutral = basis["vertices"] + torch.einsum("i,ivc->vc", shared[:self.n_id], basis["identity"])
        points = neutral[None] + torch.einsum("ke,evc->kvc", locals_[:, 6:], basis["expression"])
        pixels, _ = self.project(shared, locals_, points)
        colours = sample_image(pictures, pixels, padding="border")
        w = weights[..., None]
        mean = (w * colours).sum(0) / w.sum(0).clamp(min=1e-9)
        return (colours - mean).square().sum(-1)

    @staticmethod
    def colour_cost(spread: torch.Tensor, weights: torch.Tensor, noise: float | None = None) -> torch.Tensor:
        """The weighted mean of ``spread``; with ``noise`` (a squared colour distance) its robust form, the mean of
        log(1 + spread / noise): a sample far off the others (hair, a glint, a lip that moved) costs little more than
        one at a few times the noise."""
        values = spread if noise is None else torch.log1p(spread / noise)
        return (weights * values).sum() / weights.sum().clamp(min=1e-9)

    def prior_cost(self, shared: torch.Tensor) -> torch.Tensor:
        delta = shared - self.prior_mean
        return delta @ self.prior_info @ delta


def _stacked(pictures: list[np.ndarray]) -> torch.Tensor:
    """(K, H, W, 3) the crops padded (edge pixels repeated) to the largest one, each at the top-left corner."""
    height = max(p.shape[0] for p in pictures)
    width = max(p.shape[1] for p in pictures)
    return torch.from_numpy(np.stack([np.pad(p, ((0, height - p.shape[0]), (0, width - p.shape[1]), (0, 0)), "edge")
                                      for p in pictures]))


def _weighted_median(values: torch.Tensor, weights: torch.Tensor) -> float:
    order = torch.argsort(values)
    cumulative = torch.cumsum(weights[order], 0)
    return float(values[order][torch.searchsorted(cumulative, cumulative[-1] / 2).clamp(max=len(values) - 1)])


class _Adam:
    """Adam (Kingma & Ba 2015, torch.optim's update and defaults) on a few tensors, each with its own step size.

    Our own because torch.optim's first use in a process imports torch's compiler (torch._dynamo: 2.5 s on the
    development CPU, a quarter of a clip's refinement) for nothing this loop needs.
    """

    def __init__(self, groups: list[tuple[torch.Tensor, float]], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.groups, self.betas, self.eps, self.steps = groups, betas, eps, 0
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p, _ in groups]

    def step(self) -> None:
        """One update from the parameters' ``.grad`` (then cleared)."""
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        with torch.no_grad():
            for (param, rate), (mean, square) in zip(self.groups, self.moments):
                mean.mul_(beta1).add_(param.grad, alpha=1 - beta1)
                square.mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                param.addcdiv_(mean, (square.sqrt() / correction2 ** 0.5).add_(self.eps), value=-rate / correction1)
                param.grad = None


def refine_identity(tracker: Tracker, views: list[KeyframeView], prior: TrackerState,
                    config: MultiViewConfig | None = None) -> MultiViewResult:
    """Refine ``tracker``'s identity and the ``views``' fits jointly (see the module docstring), in place.

    ``prior`` is the tracker state before these keyframes were added (their landmarks enter here as residuals, so
    they are not counted twice). The tracker's state keeps its information matrix and takes the refined mean.
    """
    import cv2

    config = config or MultiViewConfig()
    if len(views) < config.min_views:
        return MultiViewResult(False, f"{len(views)} keyframe(s): the colour agreement needs {config.min_views}")
    problem = _Problem(tracker, views, prior, config)
    before = problem.landmark_errors()
    shared = problem.shared.clone().requires_grad_(True)
    locals_ = torch.stack(problem.locals).requires_grad_(True)
    photo_before = photo_after = 0.0
    for level, blur in enumerate(config.blur_iod):
        pictures = _stacked([detail(v.crop, max(blur * iod, 0.5)) if config.shading_invariant else
                             cv2.GaussianBlur(v.crop[..., :3], (0, 0), max(blur * iod, 0.5)).astype(np.float32) / 255.0
                             for v, iod in zip(views, problem.iod)])
        problem.shared = shared.detach()
        weights = torch.stack([problem.weights(k, lo.detach(), margin=round(2 * blur * iod) + 1)
                               for k, (lo, iod) in enumerate(zip(locals_, problem.iod))])
        weights = weights * ((weights > 0).sum(0) >= 2)  # only points two keyframes see
        if float(weights.sum()) <= 0:
            return MultiViewResult(False, "the keyframes share no visible skin", landmark_error_before=before)
        with torch.no_grad():  # the level's noise: the median spread, so that the cost is in units of the data's own
            spread = problem.spread(shared, locals_, pictures, weights)
            noise = max(float(_weighted_median(spread[weights > 0], weights[weights > 0])), 1e-8)
            if level == len(config.blur_iod) - 1:
                photo_before = float(problem.colour_cost(spread, weights, noise))
        optimiser = _Adam([(shared, config.rate_identity), (locals_, config.rate_local)])
        for _ in range(config.steps):
            cost = (problem.landmark_cost(shared, locals_) + problem.prior_cost(shared)
                    + config.weight * problem.colour_cost(problem.spread(shared, locals_, pictures, weights),
                                                          weights, noise))
            cost.backward()
            with torch.no_grad():
                shared.grad[-1] = 0.0  # the focal length stays the landmarks' (depth and size trade off in colour)
            optimiser.step()
            with torch.no_grad():
                locals_[:, 6:].clamp_(0.0, 1.0)
        with torch.no_grad():
            photo_after = float(problem.colour_cost(problem.spread(shared, locals_, pictures, weights), weights,
                                                    noise))
    problem.shared, problem.locals = shared.detach(), list(locals_.detach())
    after = problem.landmark_errors()
    limit = [max(config.max_landmark_error, 2 * b) for b in before]
    if any(a > lim for a, lim in zip(after, limit)):
        return MultiViewResult(False, "the refined shape no longer fits the landmarks", photo_before, photo_after,
                               before, after)
    _apply(tracker, views, problem)
    return MultiViewResult(True, "", photo_before, photo_after, before, after)


def _apply(tracker: Tracker, views: list[KeyframeView], problem: _Problem) -> None:
    """Write the refined identity into the tracker state and the refined poses/expressions into the fits."""
    mean = tracker.state.mean.copy()
    mean[:-1] = problem.shared[:-1].double().numpy()
    tracker.state = TrackerState(mean, tracker.state.information, tracker.state.keyframes)
    errors = problem.landmark_errors()
    for view, local, error in zip(views, problem.locals, errors):
        fit = view.fit
        fit.rotation = (FLIP @ axis_angle_to_matrix(local[:3])).numpy()
        fit.translation = local[3:6].numpy().copy()
        fit.expression = local[6:].numpy().copy()
        fit.arkit = expression_to_arkit(tracker.model, fit.expression, view.detection.blendshapes)
        tracker.refit_lids(fit, view.detection)  # the joint cost weighs the lid landmarks as little as the fit did
        fit.landmark_error_iod = error
