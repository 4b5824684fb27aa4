"""Apple's 52 ARKit blendshape names, their UI groups, and tolerant matching of other spellings.

"Left"/"Right" always mean the subject's left and right.
"""

from __future__ import annotations

import re

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

# Sidebar groups of the Expressions panel, in display order.
ARKIT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Brows", tuple(n for n in ARKIT_NAMES if n.startswith("brow"))),
    ("Eyes", tuple(n for n in ARKIT_NAMES if n.startswith("eye"))),
    ("Jaw", tuple(n for n in ARKIT_NAMES if n.startswith("jaw"))),
    ("Mouth", tuple(n for n in ARKIT_NAMES if n.startswith("mouth") or n == "tongueOut")),
    ("Cheeks", tuple(n for n in ARKIT_NAMES if n.startswith("cheek"))),
    ("Nose", tuple(n for n in ARKIT_NAMES if n.startswith("nose"))),
)

_SIDE_SUFFIXES = (("_l", "left"), ("_r", "right"), (".l", "left"), (".r", "right"))


def _canonical_key(name: str) -> str:
    """Case-insensitive key that merges the common spellings of one shape.

    Covers lowerCamelCase (ARKit), PascalCase (Unreal, Live Link Face), raw ``_L``/``_R`` suffixes
    (iFacialMocap, ICT) and separators such as ``mouth_smile_left``.
    """
    key = name.strip().lower()
    for suffix, side in _SIDE_SUFFIXES:
        if key.endswith(suffix):
            key = key[: -len(suffix)] + side
            break
    return re.sub(r"[^a-z0-9]", "", key)


_BY_KEY = {_canonical_key(n): n for n in ARKIT_NAMES}


def to_arkit_name(name: str) -> str | None:
    """The ARKit name a foreign spelling refers to, or None when it names no ARKit shape."""
    return _BY_KEY.get(_canonical_key(name))


def match_names(names: list[str] | tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Map foreign names onto ARKit names.

    Returns ``(mapping foreign -> ARKit, unmatched foreign names)``; the first spelling of a shape wins.
    """
    mapping: dict[str, str] = {}
    unmatched: list[str] = []
    taken: set[str] = set()
    for name in names:
        arkit = to_arkit_name(name)
        if arkit is None or arkit in taken:
            unmatched.append(name)
            continue
        mapping[name] = arkit
        taken.add(arkit)
    return mapping, unmatched
