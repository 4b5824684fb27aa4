"""Drive a neural avatar: head-model expression (ARKit-52 or the model's own), head pose and camera -> frame.

Expression and gaze reach the generator only through the mesh condition; the head pose only through the camera
(the mesh is always rendered in its canonical frame), exactly as in the reference. The texture and static
backbone outputs are computed once per avatar and reused for every frame.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.prior.condition import IctCondition
from invertavatar.neural.prior.generator import AvatarFeatures, Next3DGenerator, Synthesis


class AvatarDriver:
    """Renders frames of one avatar (fixed ws and identity) for varying expression, pose and camera."""

    def __init__(
        self,
        generator: Next3DGenerator,
        head_model,
        ws: torch.Tensor,
        identity: torch.Tensor | None = None,
        noise_mode: str = "const",
        seed: int = 0,
        condition=None,
    ) -> None:
        """``condition`` builds mesh conditions and camera labels (default: ``IctCondition`` for the ICT model;
        FaceVerse needs a ``FaceverseCondition`` made with the user's fv2fl and face-mask files)."""
        if condition is None and head_model.name.lower().startswith("faceverse"):
            raise InvertAvatarError("bad_input", "A FaceVerse head needs its condition files to drive the prior.",
                                    "Pass condition=FaceverseCondition(model, *load_faceverse_extras(fv2fl, mask)).")
        self.generator, self.model, self.ws, self.noise_mode = generator, head_model, ws, noise_mode
        self.identity, self.seed = identity, seed  # a fixed ray jitter per frame keeps animations flicker-free
        self.condition = condition or IctCondition(head_model, generator.config)
        with torch.no_grad():
            self.features: AvatarFeatures = generator.avatar_features(ws, noise_mode)

    def expression_from_arkit(self, arkit: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(52,) or (B, 52) ARKit weights -> (B, E) weights of the head model's own expression basis."""
        weights = torch.as_tensor(np.asarray(arkit, dtype=np.float32)).reshape(-1, 52)
        matrix = torch.from_numpy(np.asarray(self.model.arkit.matrix, dtype=np.float32))  # (E, 52)
        return weights @ matrix.T

    def frame(
        self,
        camera,
        expression: torch.Tensor | None = None,
        arkit: np.ndarray | torch.Tensor | None = None,
        head_rotation: np.ndarray | None = None,
        head_translation: np.ndarray | None = None,
    ) -> Synthesis:
        """Render one frame.

        ``camera`` is an ``invertavatar.render.Camera`` (backend metres) for a single image; ``head_rotation``
        (3, 3) and ``head_translation`` (3,) pose the head in the same world (default: identity). Give either the
        model's ``expression`` (1, E) or ``arkit`` (52,) weights (default: neutral).
        """
        if expression is None:
            expression = self.expression_from_arkit(arkit) if arkit is not None else None
        if expression is None:
            expression = torch.zeros(1, self.model.n_expression)
        vertices = self.model.evaluate(self.identity, expression.float())
        condition = self.condition(vertices)
        # Posing the head by (R_h, t_h) is the same image as the canonical head seen by camera (R_c R_h, R_c t_h + t_c).
        rot = np.eye(3) if head_rotation is None else np.asarray(head_rotation, np.float64)
        trans = np.zeros(3) if head_translation is None else np.asarray(head_translation, np.float64)
        r_c = np.asarray(camera.R, np.float64).reshape(3, 3)
        t_c = np.asarray(camera.t, np.float64).reshape(3)
        canonical = SimpleNamespace(K=np.asarray(camera.K, np.float64).reshape(3, 3), R=r_c @ rot,
                                    t=r_c @ trans + t_c, width=camera.width, height=camera.height)
        label = self.condition.camera_label(canonical)[None].to(self.ws.device)
        with torch.no_grad():
            planes = self.generator.face_planes(self.features, self.ws, condition.to(self.ws.device), self.noise_mode)
            jitter = torch.Generator(device=self.ws.device).manual_seed(self.seed)
            return self.generator.render(planes, self.ws, label, generator=jitter)
