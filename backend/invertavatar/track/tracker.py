"""Incremental multi-frame fitting: one identity and focal length shared by all frames, pose and expression per frame.

Each new frame is fitted jointly with the shared parameters under a Gaussian prior that summarises every earlier
frame (mean and information matrix, a Laplace approximation). After the fit, the frame's Gauss-Newton information
about the shared parameters — with its own pose and expression marginalised out (Schur complement) — is added to
that prior. The state is therefore (S, S) + (S,) with S = identity size + 1, whatever the number of frames: adding
frame N costs the same as adding frame 2, and earlier frames are never re-solved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..detect import Detection
from ..device import single_thread_blas
from ..errors import InvertAvatarError
from ..headmodel import HeadModel
from ..render import axis_angle_to_matrix
from .correspondence import Correspondence, correspondence_for, landmark_basis, landmark_points
from .state import TrackerState
from .gaze import estimate_gaze
from .lids import fit_lids

# Stand-in for the camera frame of a frontal camera: OpenCV camera axes (y down, z forward) vs backend (+Y up, +Z
# towards the viewer).
FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


@dataclass
class TrackerConfig:
    """Weights of the fitting terms (landmark residuals are in units of the inter-ocular distance)."""

    identity_prior: float = 1e-4  # N(0, 1) identity coefficients, against mean-square landmark error ~ (1.5% IOD)²
    focal_prior: float = 1e-2  # log focal ratio around the prior below
    focal_ratio_prior: float = 1.6  # focal / longer image side of a typical phone or webcam photo
    expression_prior: float = 2e-3  # stay near the detector's blendshape scores
    # Clips: each expression weight stays near the previous frame's, weighed at this share of what the frame's own
    # landmarks say about it (a share, not an absolute weight: an absolute one lagged the jaw of a model whose basis
    # is scaled unlike ICT's by a frame in three); the pose follows the landmarks.
    temporal_share: float = 0.1
    iterations_first: int = 15  # Levenberg-Marquardt steps
    iterations_next: int = 6
    max_residual_iod: float = 0.12  # a fit worse than this is not a human face the model can represent
    fit_lids: bool = True  # refit the lid shapes to the eyelid landmarks after the whole-face fit (track/lids.py)


@dataclass
class FrameFit:
    """One fitted frame (backend axes; ``rotation``/``translation`` map model space to the camera, OpenCV)."""

    index: int
    time: float
    source: str
    image_size: tuple[int, int]
    rotation: np.ndarray
    translation: np.ndarray
    expression: np.ndarray
    arkit: np.ndarray
    focal: float
    landmark_error_iod: float
    gaze: dict[str, list[float]] = field(default_factory=dict)
    keyframe: bool = False
    principal: tuple[float, float] | None = None  # (cx, cy) pixels; None = the image centre (a crop moves it)

    def camera_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K, R, t of the camera in which the head sits at the model origin unmoved (object pose folded in)."""
        height, width = self.image_size
        cx, cy = self.principal if self.principal is not None else (width / 2, height / 2)
        k = torch.tensor([[self.focal, 0, cx], [0, self.focal, cy], [0, 0, 1]], dtype=torch.float32)
        return k, torch.from_numpy(self.rotation).float(), torch.from_numpy(self.translation).float()


def pose_vector(fit: FrameFit) -> np.ndarray:
    """(6,) the solver's pose of ``fit``: the rotation vector of ``FLIP @ fit.rotation``, then the translation."""
    import cv2

    rotvec = cv2.Rodrigues((FLIP.numpy() @ fit.rotation).astype(np.float64))[0].ravel()
    return np.r_[rotvec, fit.translation].astype(np.float64)


def image_landmarks(detection: Detection) -> np.ndarray:
    """Landmarks in the renderer's pixel convention (pixel i spans [i, i+1]); detectors put centres at integers."""
    return detection.landmarks.astype(np.float64) + 0.5


def inter_ocular(landmarks: np.ndarray, scheme: str) -> float:
    """Distance between the outer eye corners in pixels (iBUG 36/45, MediaPipe 33/263)."""
    a, b = (33, 263) if scheme == "mediapipe478" else (36, 45)
    return float(np.linalg.norm(landmarks[a] - landmarks[b]))


class Tracker:
    """Fits frames one at a time; ``state`` holds everything earlier frames contribute."""

    def __init__(self, model: HeadModel, state: TrackerState | None = None, config: TrackerConfig | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.model = model
        self.config = config or TrackerConfig()
        self.device = torch.device(device)
        self.state = state or TrackerState.initial(model.n_identity, self.config)
        self.previous: FrameFit | None = None

    @property
    def identity(self) -> np.ndarray:
        return self.state.mean[:-1].copy()

    def focal_for(self, image_size: tuple[int, int], log_ratio: float | None = None) -> float:
        ratio = math.exp(self.state.mean[-1] if log_ratio is None else log_ratio)
        return ratio * max(image_size)

    # -------------------------------------------------------------------------------------------------- fitting
    def _residual_fn(self, detection: Detection, corr: Correspondence, image_size: tuple[int, int]):
        """r(shared, local) → whitened landmark residuals, and its Jacobian, used by the fit and the state update."""
        target = torch.from_numpy(image_landmarks(detection)[corr.landmark_ids]).float().to(self.device)
        scale = 1.0 / max(inter_ocular(detection.landmarks, detection.scheme), 1.0)
        sqrt_w = torch.from_numpy(np.sqrt(corr.weights / len(corr.weights))).float().to(self.device)[:, None]
        height, width = image_size
        centre = torch.tensor([width / 2, height / 2], device=self.device)
        n_id, n_ex = self.model.n_identity, self.model.n_expression
        flip = FLIP.to(self.device)
        basis = landmark_basis(self.model, corr, self.device)  # (I,L,3) and (E,L,3) at the landmarks

        def project(shared: torch.Tensor, local: torch.Tensor):
            identity, log_ratio = shared[:n_id], shared[n_id]
            rotvec, translation, expression = local[:3], local[3:6], local[6:6 + n_ex]
            points = landmark_points(basis, identity[None], expression[None])[0]
            rotation = flip @ axis_angle_to_matrix(rotvec)
            cam = points @ rotation.T + translation
            focal = torch.exp(log_ratio) * max(height, width)
            return focal * cam[:, :2] / cam[:, 2:3].clamp(min=1e-3) + centre, cam, rotation, focal

        def residual(shared: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
            pixels = project(shared, local)[0]
            return ((pixels - target) * scale * sqrt_w).reshape(-1)

        def jacobian(shared: torch.Tensor, local: torch.Tensor, with_shared: bool = True) -> torch.Tensor:
            """Analytic d residual / d [shared, local] (rotation as a left perturbation, same column span);
            without ``with_shared`` only the local columns (frames that do not update the identity)."""
            with torch.no_grad():
                pixels, cam, rotation, focal = project(shared, local)
                z = cam[:, 2].clamp(min=1e-3)
                d_pix_d_cam = torch.zeros(len(cam), 2, 3, device=cam.device)
                d_pix_d_cam[:, 0, 0] = focal / z
                d_pix_d_cam[:, 1, 1] = focal / z
                d_pix_d_cam[:, :, 2] = -focal * cam[:, :2] / z[:, None] ** 2
                d_ex = torch.einsum("lpc,cd,eld->lpe", d_pix_d_cam, rotation, basis["expression"])
                rotated = cam - local[3:6]
                skew = torch.zeros(len(cam), 3, 3, device=cam.device)
                skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -rotated[:, 2], rotated[:, 1], -rotated[:, 0]
                skew = skew - skew.transpose(1, 2)
                d_rot = -torch.einsum("lpc,lcd->lpd", d_pix_d_cam, skew)
                blocks = [d_rot, d_pix_d_cam, d_ex]
                if with_shared:
                    d_id = torch.einsum("lpc,cd,ild->lpi", d_pix_d_cam, rotation, basis["identity"])
                    blocks = [d_id, (pixels - centre)[:, :, None]] + blocks
                full = torch.cat(blocks, 2)
                return (full * (scale * sqrt_w)[:, :, None]).reshape(-1, full.shape[2])

        return residual, jacobian

    def _initial_local(self, detection: Detection, corr: Correspondence, image_size: tuple[int, int],
                       consecutive: bool) -> np.ndarray:
        """Clip frames start from the previous frame; photos from PnP on the current mean shape, with the expression
        from the detector's blendshape scores (so a photo's fit does not depend on which photo came before)."""
        import cv2

        n_ex = self.model.n_expression
        if consecutive and self.previous is not None and self.previous.image_size == image_size:
            return np.concatenate([pose_vector(self.previous), self.previous.expression]).astype(np.float64)
        expression = np.zeros(n_ex)
        if detection.blendshapes is not None:
            expression = np.clip(self.model.arkit.matrix @ detection.blendshapes, 0, 1)
        identity = torch.from_numpy(self.identity).float()[None]
        basis = landmark_basis(self.model, corr, self.device)
        points = landmark_points(basis, identity, torch.from_numpy(expression).float()[None])[0]
        points = points.numpy().astype(np.float64)
        focal = self.focal_for(image_size)
        height, width = image_size
        k = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
        image_points = image_landmarks(detection)[corr.landmark_ids].astype(np.float64)
        ok, rvec, tvec = cv2.solvePnP(points, image_points, k, None, flags=cv2.SOLVEPNP_EPNP)
        if not ok or tvec[2, 0] <= 0:
            rvec, tvec = np.zeros((3, 1)), np.array([[0.0], [0.0], [focal * 0.15 / max(width, height) * 4]])
        else:
            # EPnP returns the OpenCV rotation; ours is FLIP @ R(rotvec), so store R(rotvec) = FLIP @ R_cv.
            rvec = cv2.Rodrigues(FLIP.numpy().astype(np.float64) @ cv2.Rodrigues(rvec)[0])[0]
        return np.concatenate([rvec.ravel(), tvec.ravel(), expression]).astype(np.float64)

    def add_frame(self, detection: Detection, image_size: tuple[int, int], index: int = 0, time: float = 0.0,
                  keyframe: bool = True, consecutive: bool = False) -> FrameFit:
        """Fit one frame. A keyframe also updates the shared identity/focal state; others only read it."""
        corr = correspondence_for(self.model, detection.scheme)
        residual, jacobian_fn = self._residual_fn(detection, corr, image_size)
        local0 = torch.from_numpy(self._initial_local(detection, corr, image_size, consecutive)).float().to(self.device)
        expr_init = local0[6:].clone()
        if detection.blendshapes is not None:
            expr_init = torch.from_numpy(np.clip(self.model.arkit.matrix @ detection.blendshapes, 0, 1)).float()
        previous = local0.clone() if (consecutive and self.previous is not None) else None
        iterations = self.config.iterations_next if previous is not None else self.config.iterations_first
        with single_thread_blas():
            shared, local = self._solve(residual, jacobian_fn, local0, expr_init, previous, keyframe, iterations)
        error = float(residual(shared, local).square().sum().sqrt())  # RMS landmark error in inter-ocular units
        if error > self.config.max_residual_iod:
            raise InvertAvatarError(
                "implausible_face", f"The face in {detection.source or 'the image'} does not fit a human head model "
                f"(landmark error {error:.0%} of the eye distance).",
                "Use a photo of a real human face; drawings, statues, animals and masks are not supported.")
        if keyframe:  # the state takes the frame's information at the whole-face optimum (a Laplace approximation)
            self._update_state(jacobian_fn, shared, local)
        if self.config.fit_lids:  # then the lids the whole-face fit left where the other landmarks put them
            with single_thread_blas():
                local = self._fit_lids(detection, image_size, shared, local)
            error = float(residual(shared, local).square().sum().sqrt())
        fit = self._make_fit(detection, image_size, index, time, shared, local, error, keyframe)
        self.previous = fit
        return fit

    def _fit_lids(self, detection: Detection, image_size: tuple[int, int], shared: torch.Tensor,
                  local: torch.Tensor) -> torch.Tensor:
        if not self.config.fit_lids:
            return local
        return fit_lids(lambda corr: self._residual_fn(detection, corr, image_size), self.model, detection.scheme,
                        shared, local)

    def refit_lids(self, fit: FrameFit, detection: Detection) -> None:
        """Refit ``fit``'s lid shapes (in place) after something else moved its expression (the multi-view shape)."""
        shared = torch.from_numpy(np.r_[self.identity, np.log(fit.focal / max(fit.image_size))]).float()
        local = torch.from_numpy(np.r_[pose_vector(fit), fit.expression]).float()
        with single_thread_blas():
            local = self._fit_lids(detection, fit.image_size, shared, local)
        fit.expression = local[6:].numpy().copy()
        fit.arkit = expression_to_arkit(self.model, fit.expression, detection.blendshapes)

    def refine_photometric(self, fit: FrameFit, detection: Detection, image: np.ndarray, texture,
                           steps: int = 12, crop: tuple[np.ndarray, Detection, FrameFit] | None = None) -> float:
        """Photometric refinement of ``fit`` (in place) against the texture fused so far; returns the colour error
        reduction (mean absolute, 0..1 per channel). Keeps the landmark term; see ``track/photometric.py``.

        ``crop`` (image, detection, fit of a crop of the frame, e.g. a stored clip keyframe) is where colours are
        compared when the full frame is no longer at hand; the landmark term always uses the full-frame detection.
        """
        from .photometric import refine_photometric

        corr = correspondence_for(self.model, detection.scheme)
        residual, _ = self._residual_fn(detection, corr, fit.image_size)
        shared = torch.from_numpy(np.r_[self.identity, np.log(fit.focal / max(fit.image_size))]).float()

        def landmark_residual(local: torch.Tensor) -> torch.Tensor:
            return residual(shared, local)

        colour_image, colour_detection, colour_fit = crop if crop is not None else (image, detection, fit)
        result = refine_photometric(self.model, self.identity, colour_fit, colour_image, colour_detection.box,
                                    texture, landmark_residual, steps)
        for target in {id(fit): fit, id(colour_fit): colour_fit}.values():
            target.rotation, target.translation, target.expression = \
                result.rotation, result.translation, result.expression
            target.arkit = expression_to_arkit(self.model, result.expression, detection.blendshapes)
        return result.error_before - result.error_after

    def _solve(self, residual, jacobian_fn, local0: torch.Tensor, expr_init: torch.Tensor,
               previous: torch.Tensor | None, keyframe: bool, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Levenberg-Marquardt on landmarks + priors; expression kept in [0, 1] by projection after each step.

        The rotation is updated as a left perturbation of the current rotation (the Jacobian's convention).
        """
        cfg = self.config
        n_shared = len(self.state.mean)
        prior_mean = self.state.mean
        prior_info = self.state.information
        shared = torch.from_numpy(prior_mean).float()
        local = local0.clone()
        # Prior curvature and target for the local block: expression near the detector's scores and, in a clip, near
        # the previous frame along the directions the landmarks see (the share of this frame's own curvature: a
        # diagonal weight in coefficient units lagged a correlated basis such as FaceVerse's).
        n_local = local.numel()
        local_info = np.zeros((n_local, n_local))
        local_target = local0.double().numpy().copy()
        local_info[6:, 6:] = np.eye(n_local - 6) * cfg.expression_prior
        local_target[6:] = expr_init.double().numpy()
        first_jacobian = None  # at the start point; the first step reuses it
        if previous is not None:
            first_jacobian = jacobian_fn(shared, local, keyframe).double().numpy()
            columns = first_jacobian[:, (n_shared if keyframe else 0) + 6:]
            temporal = cfg.temporal_share * (columns.T @ columns)
            detector = local_info[6:, 6:].copy()
            local_target[6:] = np.linalg.solve(detector + temporal + 1e-12 * np.eye(n_local - 6),
                                               detector @ local_target[6:] + temporal @ previous.double().numpy()[6:])
            local_info[6:, 6:] += temporal

        def cost(sh: torch.Tensor, lo: torch.Tensor) -> float:
            r = residual(sh, lo).double().numpy()
            d_s = sh.double().numpy() - prior_mean
            d_l = lo.double().numpy() - local_target
            return float(r @ r + d_s @ prior_info @ d_s + d_l @ local_info @ d_l)

        damping, current = 1e-3, cost(shared, local)
        for _ in range(iterations):
            if first_jacobian is None:
                first_jacobian = jacobian_fn(shared, local, keyframe).double().numpy()
            jac, first_jacobian = first_jacobian, None
            r = residual(shared, local).double().numpy()
            hessian = jac.T @ jac
            gradient = jac.T @ r
            d_l = local.double().numpy() - local_target
            offset = 0 if not keyframe else n_shared
            if keyframe:
                d_s = shared.double().numpy() - prior_mean
                hessian[:n_shared, :n_shared] += prior_info
                gradient[:n_shared] += prior_info @ d_s
            hessian[offset:, offset:] += local_info
            gradient[offset:] += local_info @ d_l
            improved = False
            while damping < 1e8:
                step = -np.linalg.solve(hessian + damping * np.diag(np.diag(hessian) + 1e-9), gradient)
                if np.abs(step).max() < 1e-7:
                    break  # converged: no step worth taking
                new_shared, new_local = self._apply_step(shared, local, step, keyframe, n_shared)
                trial = cost(new_shared, new_local)
                if trial < current:
                    shared, local, damping = new_shared, new_local, max(damping / 3, 1e-7)
                    improved = current - trial > 1e-3 * current  # stop once a step gains under 0.1 %
                    current = trial
                    break
                damping *= 4
            if not improved:
                break
        return shared, local

    @staticmethod
    def _apply_step(shared: torch.Tensor, local: torch.Tensor, step: np.ndarray, keyframe: bool,
                    n_shared: int) -> tuple[torch.Tensor, torch.Tensor]:
        import cv2

        step_t = torch.from_numpy(step).float()
        if keyframe:
            shared = shared + step_t[:n_shared]
            step_t = step_t[n_shared:]
        new_local = local.clone()
        flip = FLIP.numpy().astype(np.float64)
        rotation = flip @ cv2.Rodrigues(local[:3].double().numpy())[0]
        rotated = cv2.Rodrigues(step_t[:3].double().numpy())[0] @ rotation
        new_local[:3] = torch.from_numpy(cv2.Rodrigues(flip @ rotated)[0].ravel()).float()
        new_local[3:] = local[3:] + step_t[3:]
        new_local[6:] = new_local[6:].clamp(0.0, 1.0)
        return shared, new_local

    def _update_state(self, jacobian_fn, shared: torch.Tensor, local: torch.Tensor) -> None:
        """Add this frame's information about the shared parameters (pose and expression marginalised out)."""
        n_shared = shared.numel()
        jacobian = jacobian_fn(shared, local).double()
        hessian = jacobian.T @ jacobian
        local_slice = slice(n_shared, None)
        h_ll = hessian[local_slice, local_slice]
        h_ll = h_ll + torch.eye(h_ll.shape[0], dtype=h_ll.dtype) * (self.config.expression_prior + 1e-8)
        h_sl = hessian[:n_shared, local_slice]
        schur = hessian[:n_shared, :n_shared] - h_sl @ torch.linalg.solve(h_ll, h_sl.T)
        self.state = self.state.updated(shared.double().numpy(), schur.numpy())

    def _make_fit(self, detection: Detection, image_size, index, time, shared, local, error, keyframe) -> FrameFit:
        rotation = (FLIP @ axis_angle_to_matrix(local[:3])).numpy()
        expression = local[6:].numpy().copy()
        arkit = expression_to_arkit(self.model, expression, detection.blendshapes)
        focal = self.focal_for(image_size, float(shared[-1]))
        fit = FrameFit(index=index, time=time, source=detection.source, image_size=image_size, rotation=rotation,
                       translation=local[3:6].numpy().copy(), expression=expression, arkit=arkit, focal=focal,
                       landmark_error_iod=error, keyframe=keyframe)
        fit.gaze = estimate_gaze(self.model, self.identity, fit, detection)
        return fit


def expression_to_arkit(model: HeadModel, expression: np.ndarray, detector_scores: np.ndarray | None) -> np.ndarray:
    """ARKit-52 weights from the model's fitted weights; names the model lacks keep the detector's score."""
    if model.arkit.from_model is not None:
        arkit = model.arkit.from_model @ expression
    else:
        mapped = model.arkit.to_arkit @ expression
        counts = model.arkit.to_arkit.sum(1)
        arkit = np.where(counts > 0, mapped / np.maximum(counts, 1), 0.0)
    if detector_scores is not None:
        missing = ~model.arkit.available
        arkit[missing] = detector_scores[missing]
    return np.clip(arkit, 0.0, 1.0).astype(np.float32)
