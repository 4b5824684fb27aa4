"""The avatar's two renderers behind one call: ``albedo`` (the fitted mesh with its fused texture) and ``neural``
(the prior with the bundle's inversion state, volume-rendered and super-resolved).

Both take the same expression (ARKit weights), head pose, gaze and camera, so the preview API, the Blender render
engine, the neural bake and reenactment (``invertavatar animate``) all draw through :func:`render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import InvertAvatarError
from ..render import Camera
from ..render.framing import portrait_camera

RENDERERS = ("albedo", "neural")
NEURAL_STATE_FILE = "neural_session.safetensors"  # = pipeline.neural_stage.STATE_FILE (checked by a test)


@dataclass
class Rendered:
    """One rendered picture: ``image`` (H, W, 3) uint8 and the renderer that drew it."""

    image: np.ndarray
    renderer: str


def has_neural_state(bundle: Any) -> bool:
    """Whether the bundle carries an inversion state (it came from a neural job)."""
    return NEURAL_STATE_FILE in (getattr(bundle, "state", None) or {})


def default_renderer(bundle: Any) -> str:
    """``neural`` when the bundle has a neural state, else ``albedo``."""
    return "neural" if has_neural_state(bundle) else "albedo"


def choose_renderer(bundle: Any, renderer: str | None) -> str:
    """The renderer to use for a request (``None`` = the default), refusing ``neural`` without a neural state."""
    name = default_renderer(bundle) if renderer in (None, "", "auto") else renderer
    if name not in RENDERERS:
        raise InvertAvatarError("invalid_render_input", f"Unknown renderer {renderer!r}.",
                                f"Use one of {', '.join(RENDERERS)} (or leave it out for the default).")
    if name == "neural" and not has_neural_state(bundle):
        raise InvertAvatarError(
            "no_neural_state", "This avatar was made without the neural inversion, so it has no neural state.",
            "Reconstruct it in neural mode (`invertavatar reconstruct --mode neural`, or Mode: Neural in the add-on; "
            "needs the neural checkpoints), or render it with the 'albedo' renderer.")
    return name


def arkit_vector(bundle: Any, arkit: Any) -> np.ndarray:
    """ARKit weights as a vector in the bundle's expression order, from a name → weight mapping or a vector."""
    names = [str(n) for n in np.asarray(bundle.mesh["expression_names"])]
    if arkit is None:
        return np.zeros(len(names), np.float32)
    if isinstance(arkit, Mapping):
        order = {name: i for i, name in enumerate(names)}
        weights = np.zeros(len(names), np.float32)
        for name, value in arkit.items():
            if name in order:  # the bundle's own names only: a model without a shape simply lacks it
                weights[order[name]] = float(value)
        return weights
    weights = np.asarray(arkit, np.float32).reshape(-1)
    if weights.shape != (len(names),) or not np.isfinite(weights).all():
        raise InvertAvatarError("invalid_render_input", f"arkit must be {len(names)} finite weights.",
                                "Give the weights in the bundle's expression order, or by name.")
    return weights


def render(bundle: Any, renderer: str | None = None, arkit: Any = None, rotation: Any = (1.0, 0.0, 0.0, 0.0),
           translation: Any = (0.0, 0.0, 0.0), gaze: Mapping[str, Any] | None = None, camera: Camera | None = None,
           size: tuple[int, int] = (512, 512), *, background: Any = None, neural_resolution: int | None = None,
           super_resolution: bool = True, seed: int = 0, hair: bool = True) -> Rendered:
    """Render an avatar bundle (``io.bundle.read_bundle``) with either renderer.

    ``arkit`` weights (by name or in bundle order), ``rotation`` a quaternion [w, x, y, z] and ``translation``
    metres (the head pose of tracks.json, about the head bone), ``gaze`` ``{"eye_L": [pitch, yaw], ...}`` radians,
    ``camera`` in the avatar's frame (backend axes, OpenCV convention; default: a frontal portrait camera of
    ``size`` (width, height)). ``background`` (RGB 0..255) applies to ``albedo``; the neural renderer draws the
    background the prior learned. ``neural_resolution`` lowers the neural renderer's ray count and
    ``super_resolution=False`` shows its raw volume render (the viewport's cheap modes). ``hair`` draws the bundle's
    hair guides as strands (``render.hair``) in the ``albedo`` renderer; the neural renderer's volume already holds
    the hair the photos showed, so it ignores the flag.
    """
    name = choose_renderer(bundle, renderer)
    if camera is None:
        camera = portrait_camera(np.asarray(bundle.mesh["vertices"]), int(size[0]), int(size[1]))
    weights = arkit_vector(bundle, arkit)
    if name == "albedo":
        from ..render.avatar import render_avatar

        image = render_avatar(bundle, weights, np.asarray(rotation, np.float64), np.asarray(translation, np.float64),
                              camera, background, gaze=dict(gaze) if gaze else None, hair=hair)
        return Rendered(image, name)
    from .neural import render_neural

    image = render_neural(bundle, weights, rotation, translation, gaze, camera, neural_resolution, seed,
                          super_resolution)
    return Rendered(image, name)


__all__ = ["RENDERERS", "Rendered", "arkit_vector", "choose_renderer", "default_renderer", "has_neural_state",
           "render"]
