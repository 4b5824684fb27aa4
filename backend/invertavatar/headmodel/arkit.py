"""Apple's 52 ARKit blendshape names, and the mapping from a head model's own expression shapes onto them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Apple's 52 names in Apple's order (ARFaceAnchor.BlendShapeLocation), lowerCamelCase, subject's left/right.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight",
    "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}


def arkit_name_for_sided(name: str) -> str:
    """``eyeBlink_L`` → ``eyeBlinkLeft`` (ARKit raw-value spelling to Apple's); other names pass through."""
    if name.endswith("_L"):
        return name[:-2] + "Left"
    if name.endswith("_R"):
        return name[:-2] + "Right"
    return name


@dataclass(frozen=True)
class ArkitMap:
    """How ARKit-52 weights drive a model's own expression shapes.

    ``matrix`` is (E, 52): model expression weights = ``matrix @ arkit_weights``. ``to_arkit`` is (52, E): the
    ARKit shape delta of name k is ``sum_e to_arkit[k, e] * model_delta[e]``; paired shapes (``browInnerUp_L/_R``)
    are summed. ``missing`` lists ARKit names the model cannot express; their rows are zero, never invented.
    ``from_model`` (52, E), when set, reads ARKit weights back from model weights for maps that mix many model
    shapes per name (FaceVerse's fitted transfer); otherwise ``to_arkit`` averaged over the pair does.
    """

    matrix: np.ndarray
    to_arkit: np.ndarray
    missing: tuple[str, ...] = field(default_factory=tuple)
    from_model: np.ndarray | None = None

    @property
    def available(self) -> np.ndarray:
        """(52,) bool: which ARKit names this model can express."""
        return np.array([name not in self.missing for name in ARKIT_NAMES])


def map_sided_names(model_names: list[str] | tuple[str, ...]) -> ArkitMap:
    """Build the ARKit map for a model whose shapes use ARKit names with ``_L``/``_R`` suffixes (ICT, FaceVerse-52).

    A shape whose de-suffixed name is an ARKit name maps one to one. An ARKit name without sides (``browInnerUp``,
    ``cheekPuff``) that the model splits into ``_L``/``_R`` maps to the pair: an ARKit weight w drives both halves
    with w, and the ARKit delta is the sum of the two half deltas.
    """
    n_model = len(model_names)
    matrix = np.zeros((n_model, len(ARKIT_NAMES)), np.float32)
    for e, raw in enumerate(model_names):
        name = arkit_name_for_sided(raw)
        if name in ARKIT_INDEX:
            matrix[e, ARKIT_INDEX[name]] = 1.0
        elif raw[-2:] in ("_L", "_R") and raw[:-2] in ARKIT_INDEX:
            matrix[e, ARKIT_INDEX[raw[:-2]]] = 1.0
    to_arkit = matrix.T.copy()
    missing = tuple(name for k, name in enumerate(ARKIT_NAMES) if not matrix[:, k].any())
    return ArkitMap(matrix=matrix, to_arkit=to_arkit, missing=missing)
