"""The bundle's texture atlas: ICT's UDIM tiles and overlapping eye UVs packed into one square image.

Layout (u right, v up; the atlas is ``size``×``size``):

    v 1 ┌───────────────┬───────────────┐
        │ face (tile 0) │ back of head  │   skin, fused from the frames (each half the atlas width)
    0.5 ├───────┬───────┼───────┬───────┤
        │ gums  │ teeth │ sclera│ iris  │   procedural (rarely or never seen well enough to fuse)
   0.25 ├───────┼───────┼───────┼───────┤
        │lacrim.│lashes │occlus.│ blend │
      0 └───────┴───────┴───────┴───────┘
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..headmodel import HeadModel


@dataclass(frozen=True)
class Slot:
    """Where one source UV range lands in the atlas: source u in [u0, u0 + width), v in [0, 1)."""

    name: str
    source_u0: float
    source_width: float
    rect: tuple[float, float, float, float]  # atlas u0, v0, u1, v1


SLOTS: dict[str, Slot] = {slot.name: slot for slot in (
    Slot("face", 0.0, 1.0, (0.0, 0.5, 0.5, 1.0)),
    Slot("back_head", 1.0, 1.0, (0.5, 0.5, 1.0, 1.0)),
    Slot("gums", 2.0, 1.0, (0.0, 0.25, 0.25, 0.5)),
    Slot("teeth", 3.0, 1.0, (0.25, 0.25, 0.5, 0.5)),
    Slot("sclera", 0.0, 1.0, (0.5, 0.25, 0.75, 0.5)),
    Slot("iris", 0.0, 1.0, (0.75, 0.25, 1.0, 0.5)),
    Slot("lacrimal", 4.0, 2.0, (0.0, 0.0, 0.25, 0.25)),
    Slot("eyelashes", 6.0, 1.0, (0.25, 0.0, 0.5, 0.25)),
    Slot("occlusion", 0.0, 1.0, (0.5, 0.0, 0.75, 0.25)),
    Slot("eye_blend", 0.0, 1.0, (0.75, 0.0, 1.0, 0.25)),
)}
MATERIAL_SLOTS = {
    "M_Face": "face", "M_BackHead": "back_head", "M_GumsTongue": "gums", "M_Teeth": "teeth",
    "M_ScleraLeft": "sclera", "M_ScleraRight": "sclera", "M_IrisLeft": "iris", "M_IrisRight": "iris",
    "M_LacrimalFluid": "lacrimal", "M_EyeLashes": "eyelashes", "M_EyeOcclusion": "occlusion",
    "M_EyeBlend": "eye_blend",
}
FUSED_SLOTS = ("face", "back_head")


def slot_of_material(name: str) -> str:
    """Atlas slot of a material. FaceVerse gets ICT-named materials from its own UV chart
    (headmodel/faceverse_layout.py); any other unknown material goes on the face tile."""
    return MATERIAL_SLOTS.get(name, "face")


def to_atlas(source_uv: np.ndarray, slot: Slot) -> np.ndarray:
    """Map UVs of a slot's source range into its atlas rectangle."""
    u0, v0, u1, v1 = slot.rect
    local_u = np.clip((source_uv[:, 0] - slot.source_u0) / slot.source_width, 0.0, 1.0)
    local_v = np.clip(source_uv[:, 1], 0.0, 1.0)
    return np.stack([u0 + local_u * (u1 - u0), v0 + local_v * (v1 - v0)], 1).astype(np.float32)


def atlas_uvs(model: HeadModel) -> tuple[np.ndarray, np.ndarray]:
    """(U', 2) atlas UVs and (F, 4) polygon UV indices: one UV entry per (source UV, slot) pair in use."""
    slot_names = list(SLOTS)
    poly_slot = np.array([slot_names.index(slot_of_material(model.material_names[m])) for m in model.face_material])
    corner_slot = np.repeat(poly_slot[:, None], 4, 1)
    used = model.face_uv >= 0
    keys = model.face_uv[used].astype(np.int64) * len(slot_names) + corner_slot[used]
    unique, inverse = np.unique(keys, return_inverse=True)
    source_ids, slot_ids = unique // len(slot_names), unique % len(slot_names)
    uv = np.zeros((len(unique), 2), np.float32)
    for s, name in enumerate(slot_names):
        chosen = slot_ids == s
        uv[chosen] = to_atlas(model.uv[source_ids[chosen]], SLOTS[name])
    face_uv = np.full(model.face_uv.shape, -1, np.int32)
    face_uv[used] = inverse
    return uv, face_uv


def slot_pixels(slot: Slot, size: int) -> tuple[slice, slice]:
    """Row and column slices of a slot's rectangle in a ``size``×``size`` atlas image (row 0 = v 1)."""
    u0, v0, u1, v1 = slot.rect
    return slice(round((1 - v1) * size), round((1 - v0) * size)), slice(round(u0 * size), round(u1 * size))
