"""Neural mode: the keyframes of a job are inverted incrementally into the prior (InvertAvatar's session).

Each keyframe's square face crop, its fitted head (identity + expression, canonical frame) and its camera (head pose
folded in) become one frame of the inversion session; the ConvGRU state is carried from frame to frame and saved in
the bundle (``state/neural_session.safetensors``) so that refinement continues it. The same stage, restored from a
bundle's state, renders the neural avatar for any head shape and camera (:meth:`NeuralStage.render`): the bake,
the preview API and reenactment all go through it.
"""

from __future__ import annotations

import dataclasses

import threading
from pathlib import Path

import numpy as np
import torch

from ..device import select_device
from ..errors import InvertAvatarError
from ..headmodel import HeadModel
from ..render import Camera
from ..render.crop import crop_image, crop_intrinsics, square_crop
from .neural_check import FACEVERSE_SIDE_FILES as FACEVERSE_EXTRAS
from .neural_check import check_prior_head_model, find_neural_checkpoints

STATE_FILE = "neural_session.safetensors"
CROP = 512

_NETS: dict[tuple, object] = {}
_NETS_LOCK = threading.Lock()


def load_inversion_net():
    """The installed prior + encoders as one ``InversionNet`` in eval mode, loaded once per file version.

    Preview renders and jobs share the loaded networks (they are only read), so a render does not pay the loading
    time of the official 88 M-parameter prior each call.
    """
    from ..neural.checkpoints import load_prior
    from ..neural.inversion.checkpoints import load_encoders

    prior_path, encoders_path = find_neural_checkpoints()
    device = select_device()
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in (prior_path, encoders_path)) + (str(device),)
    with _NETS_LOCK:
        net = _NETS.get(key)
        if net is None:
            _NETS.clear()  # one set of networks at a time: the official ones take gigabytes
            net = load_encoders(encoders_path, load_prior(prior_path, device), device).eval()
            _NETS[key] = net
    return net


def make_condition(model: HeadModel, config):
    """The mesh condition of ``model`` for a prior: ICT's own, or the official FaceVerse chain with its side files."""
    from ..neural.prior.condition import IctCondition

    if not model.name.lower().startswith("faceverse"):
        return IctCondition(model, config)
    from .. import paths
    from ..neural.prior.condition_faceverse import FaceverseCondition, load_faceverse_extras

    folder = paths.faceverse_dir()
    files = [Path(folder) / name for name in FACEVERSE_EXTRAS]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InvertAvatarError(
            "neural_unavailable", f"The neural renderer of a FaceVerse avatar needs {', '.join(missing)} in {folder}.",
            "They come with the official InvertAvatar release (FaceVerse → canonical transform and face mask).")
    return FaceverseCondition(model, *load_faceverse_extras(*files), config=config)


class NeuralStage:
    """Loads the prior and encoders once; ``add`` takes one keyframe; ``state_bytes`` is what the bundle keeps.

    Keyframes are collected and inverted together when the state is next needed (``flush``): with official
    few-shot weights the session uses the reference's grouping (groups of 4 interleaved frames per call), which
    only means something when the frames arrive together; with our own encoders (one frame per call) collecting
    changes nothing.
    """

    def __init__(self, model: HeadModel, saved_state: bytes | None = None) -> None:
        from ..neural.inversion.session import InversionSession

        check_prior_head_model(find_neural_checkpoints()[0], model.name)  # before loading gigabytes of weights
        net = load_inversion_net()
        self.model = model
        self.condition = make_condition(model, net.prior_config)
        # Converted official few-shot weights carry the official BatchNorm mode; they expect the official grouping.
        grouping = "official" if getattr(net, "batchnorm_mode", "eval") == "official" else "stream"
        self.session = (InversionSession.from_bytes(net, saved_state) if saved_state
                        else InversionSession(net, grouping=grouping))
        self.frames = 0
        self._pending: list = []  # FrameBatch of each keyframe not inverted yet

    @property
    def output_size(self) -> int:
        """Side of the prior's square output image in pixels (64 for ``tiny``, 512 for ``official``)."""
        return self.session.net.prior_config.output_resolution

    def add(self, image: np.ndarray, box: np.ndarray, fit, vertices: np.ndarray) -> None:
        """Invert one keyframe (``vertices``: the fitted head without its pose, model space)."""
        from ..neural.inversion.frames import frame_from_fit

        from ..neural.prior.condition_faceverse import FaceverseCondition

        k, rotation, translation = fit.camera_tensors()
        if isinstance(self.condition, FaceverseCondition):  # the official prior: the released camera convention
            crop, camera = self.official_view(image, k.numpy(), rotation.numpy(), translation.numpy())
        else:  # our own priors see a square 1.6 times the landmark box
            rect = square_crop(box)
            crop = (crop_image(image, rect, CROP)[0].numpy() * 255 + 0.5).astype(np.uint8)
            camera = Camera(crop_intrinsics(k.numpy(), rect, CROP), rotation, translation, CROP, CROP)
        with torch.no_grad():
            self._pending.append(frame_from_fit(self.condition, crop, torch.from_numpy(vertices).float(), camera))
        self.frames += 1

    def official_view(self, image: np.ndarray, k: np.ndarray, rotation: np.ndarray,
                      translation: np.ndarray) -> tuple[np.ndarray, Camera]:
        """The frame as the released model's cameras see it: a virtual camera turned (about its centre) to look at
        the prior's camera pivot, with normalised focal 4.2647 and the principal point at the centre — what the
        reference's EG3D-style crop and fit give its images. Returns the CROP² picture and that camera."""
        import cv2

        from ..neural.prior.cameras import DEFAULT_FOCAL, DEFAULT_PIVOT

        c = self.condition
        k, rotation, translation = (np.asarray(a, np.float64) for a in (k, rotation, translation))
        pivot = np.linalg.solve(c.scale * c.rotation, np.asarray(DEFAULT_PIVOT) - c.offset)  # backend metres
        axis = rotation @ pivot + translation
        axis /= np.linalg.norm(axis)
        # The rotation taking the camera's +z to the pivot's direction, as a change of camera frame (rows).
        right = np.cross([0.0, 1.0, 0.0], axis)
        right /= np.linalg.norm(right)
        turn = np.stack([right, np.cross(axis, right), axis])
        k_view = np.array([[DEFAULT_FOCAL * CROP, 0, CROP / 2], [0, DEFAULT_FOCAL * CROP, CROP / 2], [0, 0, 1]])
        # Pixel centres: the renderer's pixel i spans [i, i+1], OpenCV's warp samples at integer positions.
        shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
        homography = np.linalg.inv(shift) @ k_view @ turn @ np.linalg.inv(k) @ shift
        crop = cv2.warpPerspective(image, homography, (CROP, CROP), flags=cv2.INTER_AREA if k[0, 0] / DEFAULT_FOCAL
                                   > CROP else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        camera = Camera(torch.from_numpy(k_view).float(), torch.from_numpy(turn @ rotation).float(),
                        torch.from_numpy(turn @ translation).float(), CROP, CROP)
        return crop, camera

    def flush(self) -> None:
        """Invert the collected keyframes in one call (see the class docstring)."""
        if not self._pending:
            return
        from ..neural.inversion.model import FrameBatch

        batches, self._pending = self._pending, []
        fields = [[getattr(b, f.name) for b in batches] for f in dataclasses.fields(FrameBatch)]
        joined = FrameBatch(*(None if any(v is None for v in values) else torch.cat(values, 1) for values in fields))
        with torch.no_grad():
            self.session.add_frames(joined)

    def state_bytes(self) -> bytes:
        self.flush()
        return self.session.state_bytes()

    @torch.no_grad()
    def render(self, vertices: np.ndarray | torch.Tensor, camera: Camera, neural_resolution: int | None = None,
               seed: int = 0, super_resolution: bool = True) -> np.ndarray:
        """The neural avatar as an (S, S, 3) uint8 image, S = :attr:`output_size` (without ``super_resolution``:
        the raw volume render, one pixel per ray).

        ``vertices`` (V, 3) the head in its canonical frame at the wanted expression and gaze (this is the mesh
        condition: expression and gaze reach the prior only through it); ``camera`` a *square* camera with the head
        pose folded in (world → camera of the canonical head), of any pixel size: the label normalises it.
        ``neural_resolution`` below the prior's own volume-renders fewer rays (the super-resolution resizes its
        input), the cheap mode of the viewport on a CPU; leaving out the super-resolution is the cheapest (at the
        official size it costs most of a frame). A fixed ray jitter (``seed``) keeps animations steady.
        """
        if camera.width != camera.height:
            raise InvertAvatarError("invalid_render_input", f"The neural render needs a square camera, got "
                                    f"{camera.width}×{camera.height}.", "Use renderers.neural_camera_cover().")
        self.flush()
        net = self.session.net
        device = self.session.device
        verts = torch.as_tensor(np.asarray(vertices, np.float32))[None]
        condition = self.condition(verts).to(device)
        label = self.condition.camera_label(camera.to(device="cpu"))[None].to(device)
        full = net.prior_config.neural_rendering_resolution
        rays = full if neural_resolution is None else max(4, min(int(neural_resolution), full))
        if rays == full and super_resolution:
            image = self.session.render(label, condition, seed=seed).image
        else:
            image = _render_reduced(self.session, label, condition, rays, seed, super_resolution)
        return ((image[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).cpu().numpy()


def _render_reduced(session, label: torch.Tensor, condition: torch.Tensor, resolution: int, seed: int,
                    super_resolution: bool = True) -> torch.Tensor:
    """``Next3DGenerator.render`` with ``resolution``² rays instead of the configured count (same stages, in order:
    face planes, rays, volume rendering, super-resolution; the SR block resamples its input to its own size).
    Without ``super_resolution`` the raw RGB of the rays is the picture."""
    from ..neural.prior.volume import camera_rays

    generator = session.net.generator
    ws = session.ws
    planes = generator.face_planes(session.avatar(), ws, condition)
    jitter = torch.Generator(device=session.device).manual_seed(seed)
    origins, dirs = camera_rays(label.to(ws.dtype), resolution)
    feats, _ = generator.renderer(planes, generator.decoder, origins, dirs, True, jitter)
    features = feats.permute(0, 2, 1).reshape(1, -1, resolution, resolution)
    if not super_resolution:
        return features[:, :3]
    return generator.superresolution(features[:, :3], features, ws, noise_mode="none")
