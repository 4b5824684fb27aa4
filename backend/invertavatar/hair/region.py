"""Which pixels of a keyframe are the person's scalp hair, and which their beard and moustache.

No hair or face-parsing network installs offline, so the region is cut from what does: MediaPipe's person mask
(detect/person_mask.py, hair included in the person), the face landmarks, and colour models measured on the frame:

- **where hair can be**: a zone around the head (an ellipse about the face, and a hanging column below it for long
  hair), minus the face's skin (texture/skin_mask.py), the eyes, brows and lips;
- **what hair looks like here**: a Gaussian in CIE Lab fitted to the person's non-skin pixels in a band above the
  forehead (the crown, where a head either has hair or shows scalp). When that band looks like the face's own skin,
  or holds almost no person pixels, the head is bald or shaved and no scalp hair is cut out;
- **above the ears** every non-skin person pixel in the zone is hair (a hat counts as hair: see docs/hair.md);
  **below them** a pixel must also look more like the hair than like the skin or the clothes (a Gaussian fitted
  below the chin), and be connected to the hair above, so a collar or a shoulder is not taken for a long fall;
- **beard**: the lower face and a band under the jaw, where pixels are clearly darker than the skin or like the hair.

Masks are computed at a reduced resolution (``WORK_SIZE``) and carry their scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..detect import Detection
from ..texture.skin_mask import (FACE_OVAL, FOREHEAD, JAW, LEFT_BROW, OUTER_LIPS, RIGHT_BROW, SkinMask, _lab,
                                 smoothness)
from ..detect.landmark_schemes import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

WORK_SIZE = 384
NOSE_BOTTOM = 2  # MediaPipe's subnasale
EAR_LEVEL = (234, 454)  # the oval's widest points, at the tragus' height
NOSE_TIP = 1
# Yaw from the landmarks: the nose tip's offset from the middle of the oval's widest points, over half their
# distance, is YAW_RATIO × tan(yaw) (measured on renders of the ICT head at ±20°, ±40°: 1.7-1.9). The cranium's
# centre lies HEAD_DEPTH face heights behind the face's centre (a head is about 1.1 face heights long).
YAW_RATIO = 1.8
HEAD_DEPTH = 0.5
MIN_CROWN_PIXELS = 40
# A crown this close to the face's skin (CIE76 ΔE of the medians) is scalp, not hair. Measured on the devset: grey
# hair over grey skin 19, blonde 22, dark hair 40-80; a bald scalp is the face's skin, a little lighter (under 10).
BALD_DELTA_E = 11.0
BALD_SMOOTHNESS = 0.6  # ... and as smooth as skin (texture/skin_mask.smoothness, 1 = like the cheeks)
BEARD_FRACTION = 0.22  # of the lower face: less than this is a clean shave or stubble


@dataclass
class HairRegion:
    """One keyframe's hair masks at reduced resolution (mask pixel = image pixel × ``scale``)."""

    scale: float
    person: np.ndarray  # (h, w) float32 0..1, the segmenter's person mask
    hair: np.ndarray  # (h, w) bool, scalp hair (empty when bald)
    beard: np.ndarray  # (h, w) bool, beard and moustache (empty when clean-shaven)
    face: np.ndarray  # (h, w) bool, the face oval
    zone: np.ndarray  # (h, w) bool, where head and hair can be (the benchmark's head region is person ∩ zone)
    chin_row: np.ndarray  # (w,) float, per column, the chin line's row: above it is "the head" for silhouettes
    bald: bool
    skin_lightness: float = float("nan")  # the face's skin, median CIE L* (0..100)

    def sample(self, mask: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """Mask values (N,) at full-resolution pixel positions (N, 2) x, y; outside the image is False/0."""
        h, w = mask.shape
        col = np.round(pixels[:, 0] * self.scale).astype(np.int64)
        row = np.round(pixels[:, 1] * self.scale).astype(np.int64)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        out = np.zeros(len(pixels), mask.dtype)
        out[inside] = mask[row[inside], col[inside]]
        return out


def _polygon(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


def _gaussian(pixels: np.ndarray, floor: float = 9.0) -> tuple[np.ndarray, np.ndarray, float]:
    mean = np.median(pixels, axis=0)
    cov = np.cov((pixels - mean).T) + np.eye(3) * floor
    return mean, np.linalg.inv(cov), float(np.linalg.slogdet(cov)[1])


def _log_likelihood(lab: np.ndarray, model: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    d = lab - model[0]
    return -0.5 * (np.einsum("...i,ij,...j->...", d, model[1], d) + model[2])


def _robust(pixels: np.ndarray) -> np.ndarray:
    """The pixels within 2.5 σ of a first fit (a few skin or background pixels do not widen the model)."""
    model = _gaussian(pixels)
    d = pixels - model[0]
    keep = np.einsum("ni,ij,nj->n", d, model[1], d) < 2.5 ** 2 * 3
    return pixels[keep] if keep.sum() >= 20 else pixels


def hair_region(image: np.ndarray, detection: Detection, skin: SkinMask | None, person: np.ndarray) -> HairRegion:
    """Cut the hair, beard and face regions out of ``person`` (the segmenter's mask at the image's size)."""
    height, width = image.shape[:2]
    scale = min(1.0, WORK_SIZE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image[..., :3], size, interpolation=cv2.INTER_AREA)
    shape = small.shape[:2]
    person_small = cv2.resize(person.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    points = detection.landmarks[:, :2].astype(np.float32) * scale
    lab = _lab(small)

    chin, top = points[152], points[10]
    face_height = float(np.linalg.norm(top - chin))
    up = (top - chin) / max(face_height, 1e-6)
    side = np.array([-up[1], up[0]], np.float32)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    offset = np.stack([cols, rows], -1) - (chin + top) / 2
    along, across = offset @ up, offset @ side  # head-aligned coordinates, in pixels
    ear_level = float(np.mean([(points[i] - (chin + top) / 2) @ up for i in EAR_LEVEL]))
    chin_level = float((chin - (chin + top) / 2) @ up)

    face = _polygon(shape, points[FACE_OVAL])
    skin_small = cv2.resize(skin.mask, size, interpolation=cv2.INTER_LINEAR) if skin is not None \
        else face.astype(np.float32)
    features = (_polygon(shape, points[RIGHT_EYE_CONTOUR]) | _polygon(shape, points[LEFT_EYE_CONTOUR])
                | _polygon(shape, points[RIGHT_BROW]) | _polygon(shape, points[LEFT_BROW])
                | _polygon(shape, points[OUTER_LIPS]))
    features = cv2.dilate(features.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    # A turned head's cranium, and the hair on it and hanging behind it, lies beside the face on the side away from
    # the nose: the zone is drawn about the face and again about the cranium's centre.
    widest = points[EAR_LEVEL[1]] - points[EAR_LEVEL[0]]
    nose = float((points[NOSE_TIP] - (points[EAR_LEVEL[0]] + points[EAR_LEVEL[1]]) / 2) @ side)
    yaw = float(np.arctan(nose / max(0.5 * float(np.linalg.norm(widest)), 1e-6) / YAW_RATIO))
    nearest = np.minimum(np.abs(across), np.abs(across + HEAD_DEPTH * face_height * np.sin(yaw)))
    ellipse = (nearest / (1.0 * face_height)) ** 2 + ((along - 0.12 * face_height) / (1.05 * face_height)) ** 2 <= 1
    column = (nearest <= 0.95 * face_height) & (along <= ear_level) & (along >= chin_level - 1.6 * face_height)
    zone = ellipse | column
    is_person = person_small > 0.5
    not_skin = skin_small < 0.35

    skin_pixels = lab[face & (skin_small > 0.6) & ~features]
    skin_model = _gaussian(_robust(skin_pixels)) if len(skin_pixels) >= 30 else None
    arc = points[FOREHEAD[:11]]
    crown = _polygon(shape, np.concatenate([arc + 0.06 * face_height * up, (arc + 0.3 * face_height * up)[::-1]]))
    crown_pixels = lab[crown & is_person & not_skin]
    bald = len(crown_pixels) < MIN_CROWN_PIXELS or crown.sum() == 0 or (crown & is_person).sum() < 0.3 * crown.sum()
    hair_model = None
    if not bald:
        hair_model = _gaussian(_robust(crown_pixels))
        if skin_model is not None and float(np.linalg.norm(hair_model[0] - skin_model[0])) < BALD_DELTA_E:
            # Skin-coloured crown: a bald scalp is as smooth as the cheeks, fair hair (blonde on fair skin) is not.
            window = max(3, round(0.02 * face_height)) | 1
            smooth = smoothness(lab[..., 0], face & (skin_small > 0.6) & ~features, window)
            bald = float(smooth[crown & is_person].mean()) > BALD_SMOOTHNESS
    hair = np.zeros(shape, bool)
    if not bald:
        candidates = zone & is_person & not_skin & ~features & ~(face & (along < 0.15 * face_height))
        # The ears sit at the oval's widest points; in shade they fail the skin test, so there hair must also
        # look like the hair.
        ears = np.zeros(shape, bool)
        for index in EAR_LEVEL:
            centre = points[index] + np.sign((points[index] - (chin + top) / 2) @ side) * side * 0.06 * face_height
            d = np.stack([cols, rows], -1) - centre
            ears |= ((d @ side) / (0.11 * face_height)) ** 2 + ((d @ up) / (0.2 * face_height)) ** 2 <= 1
        upper = candidates & (along >= ear_level) & ~ears
        hair_ll = _log_likelihood(lab, hair_model)
        rivals = [_log_likelihood(lab, skin_model)] if skin_model is not None else []
        clothes = lab[is_person & (along < chin_level - 0.5 * face_height) & (np.abs(across) < 0.5 * face_height)]
        if len(clothes) >= 30:
            clothes_model = _gaussian(_robust(clothes))
            d = clothes_model[0] - hair_model[0]
            if float(np.sqrt(d @ hair_model[1] @ d)) > 1.5:  # clothes unlike the hair: they can be told apart
                rivals.append(_log_likelihood(lab, clothes_model))
        like_hair = hair_ll > (np.maximum.reduce(rivals) if rivals else -np.inf)
        lower = candidates & ~upper & like_hair
        hair = cv2.morphologyEx((upper | lower).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
        count, labels = cv2.connectedComponents(hair.astype(np.uint8))
        if count > 2:  # keep what touches the crown: a dark patch of clothing below is not hair
            touching = np.unique(labels[hair & (along >= ear_level)])
            hair &= np.isin(labels, touching[touching > 0])
    # A bald head's "hair model" is its scalp, the skin's own colour: a beard is then told by darkness alone.
    beard = _beard(shape, points, lab, along, chin_level, face, is_person, skin_small, skin_model,
                   None if bald else hair_model, features, face_height, up)
    chin_row = chin[1] + (np.arange(shape[1], dtype=np.float32) - chin[0]) * (-side[1] / max(abs(side[0]), 1e-3)) \
        if abs(side[0]) > 1e-3 else np.full(shape[1], chin[1], np.float32)
    return HairRegion(scale, person_small, hair, beard, face, zone, chin_row.astype(np.float32), bool(bald),
                      float(skin_model[0][0]) if skin_model is not None else float("nan"))


def _beard(shape, points, lab, along, chin_level, face, is_person, skin_small, skin_model, hair_model, features,
           face_height, up) -> np.ndarray:
    """Beard and moustache: the face below the nose and a band under the jaw, darker than skin or like the hair."""
    nose_level = float((points[NOSE_BOTTOM] - (points[152] + points[10]) / 2) @ up)
    lower_face = face & (along < nose_level) & ~features & is_person
    if lower_face.sum() < 30 or skin_model is None:
        return np.zeros(shape, bool)
    darker = lab[..., 0] < skin_model[0][0] - 12.0
    like = np.zeros(shape, bool)
    if hair_model is not None:
        like = _log_likelihood(lab, hair_model) > _log_likelihood(lab, skin_model)
    beard_like = (skin_small < 0.4) & (darker | like)
    # Decided on the face itself: under the jaw, the neck's shadow is as dark as a beard.
    inside = cv2.morphologyEx((lower_face & beard_like).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if inside.sum() < BEARD_FRACTION * lower_face.sum():
        return np.zeros(shape, bool)
    jaw = points[JAW]
    under = _polygon(shape, np.concatenate([jaw, (jaw - 0.15 * face_height * up)[::-1]])) & is_person & ~face
    beard = (inside > 0) | (under & beard_like)
    return cv2.morphologyEx(beard.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def hair_pixels(image: np.ndarray, region: HairRegion, mask: np.ndarray) -> np.ndarray:
    """(N, 3) float32 sRGB 0..1 of the confident interior of ``mask``: eroded by two pixels and where the segmenter
    is sure of the person (at the mask's edge and between wisps, hair pixels blend with the background)."""
    size = (mask.shape[1], mask.shape[0])
    small = cv2.resize(image[..., :3], size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    inner = (cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & (region.person > 0.9)
    if inner.sum() < 20:
        inner = mask
    return small[inner]
