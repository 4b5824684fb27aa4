"""Neural mode: the keyframes of a job are inverted incrementally into the prior (InvertAvatar's session).

Each keyframe's square face crop, its fitted head (identity + expression, canonical frame) and its camera (head pose
folded in) become one frame of the inversion session; the ConvGRU state is carried from frame to frame and saved in
the bundle (``state/neural_session.safetensors``) so that refinement continues it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..device import select_device
from ..headmodel import HeadModel
from ..render import Camera
from ..render.crop import crop_image, crop_intrinsics, square_crop
from .neural_check import find_neural_checkpoints

STATE_FILE = "neural_session.safetensors"
CROP = 512


class NeuralStage:
    """Loads the prior and encoders once; ``add`` feeds one keyframe; ``state_bytes`` is what the bundle keeps."""

    def __init__(self, model: HeadModel, saved_state: bytes | None = None) -> None:
        from ..neural.checkpoints import load_prior
        from ..neural.inversion.checkpoints import load_encoders
        from ..neural.inversion.session import InversionSession
        from ..neural.prior.condition import IctCondition

        prior_path, encoders_path = find_neural_checkpoints()
        device = select_device()
        net = load_encoders(encoders_path, load_prior(prior_path, device), device).eval()
        self.model = model
        self.condition = IctCondition(model, net.prior_config)
        self.session = (InversionSession.from_bytes(net, saved_state) if saved_state
                        else InversionSession(net, grouping="stream"))
        self.frames = 0

    def add(self, image: np.ndarray, box: np.ndarray, fit, vertices: np.ndarray) -> None:
        """Invert one keyframe (``vertices``: the fitted head without its pose, model space)."""
        from ..neural.inversion.frames import frame_from_fit

        k, rotation, translation = fit.camera_tensors()
        rect = square_crop(box)
        crop = (crop_image(image, rect, CROP)[0].numpy() * 255 + 0.5).astype(np.uint8)
        camera = Camera(crop_intrinsics(k.numpy(), rect, CROP), rotation, translation, CROP, CROP)
        with torch.no_grad():
            self.session.add_frames(frame_from_fit(self.condition, crop, torch.from_numpy(vertices).float(), camera))
        self.frames += 1

    def state_bytes(self) -> bytes:
        return self.session.state_bytes()
