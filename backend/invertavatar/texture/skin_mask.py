"""Per-frame skin mask: which pixels of a photo may give colour to skin texels.

The mask is built from the landmark geometry, a skin colour model measured on the face itself and, where MediaPipe's
hand models are installed, the hands found in the frame (detect/hands.py):

- **geometry** — the face oval, minus the eye openings (dilated so lashes and lid margins stay out), minus the
  mouth opening; a region below the jaw for the neck; a band around the oval for ears and the sides of the head;
- **colour** — a Gaussian in CIE Lab fitted robustly to the cheeks, nose and chin (the parts of the oval that are
  almost always bare skin). Pixels far from it in chroma, or much darker / brighter than the face, are hair,
  glasses, clothes, jewellery or background. Inside the oval the colour gate is lenient (shading varies there);
  outside it (neck, ears) it is strict, and nothing outside those regions is ever skin;
- **the neck** — skin runs down from the jaw until clothing, a collar or a necklace interrupts it: per image column,
  whatever lies below the first break is out (décolleté skin under a necklace is not the neck the mesh has, and
  a collar's few skin-coloured pixels are what fused into speckle). Busy texture (lace, a chain, stubble, fabric)
  is out too: neck skin is smooth, as smooth as the cheeks at most a few times over;
- **hands** — a hand is skin of the face's own colour, so no colour gate tells it from the chin it rests on: the
  pixels a detected hand and its forearm cover are out.

The mask is soft (0..1) and computed at a reduced resolution (at most ``WORK_SIZE`` pixels on the long side):
:class:`SkinMask` maps full-resolution pixel positions into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..detect import Detection
from ..detect.hands import Hand, hand_mask, shared_detector
from ..detect.landmark_schemes import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, eye_centers

WORK_SIZE = 512
NECK_GAP = 0.04  # face heights of non-skin that end the neck (a collar, a necklace); the jaw's shadow is less
NECK_START = 0.12  # face heights under the jaw within which a column's neck skin must begin
WHITE_CHROMA_SHARE = 0.5  # of the skin's chroma: a pixel below it and not much darker than the skin is white ...
WHITE_BRIGHTER = 12.0  # L*: ... and so is one this much brighter than the skin (a tooth, a collar, a background)
# MediaPipe face-mesh contours (indices into the 468/478 landmarks).
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                      148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109])
OUTER_LIPS = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185])
INNER_LIPS = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191])
RIGHT_BROW = np.array([70, 63, 105, 66, 107, 55, 65, 52, 53, 46])
LEFT_BROW = np.array([300, 293, 334, 296, 336, 285, 295, 282, 283, 276])
# Reference skin patches: triangles of landmarks on the cheeks, the nose bridge and the chin.
SKIN_PATCHES = (
    (50, 117, 187), (280, 346, 411), (205, 50, 187), (425, 280, 411),  # cheeks
    (6, 197, 195), (195, 5, 4),  # nose
    (200, 199, 175), (421, 200, 199), (201, 200, 199),  # chin
    (109, 10, 151), (151, 338, 10),  # mid forehead (below a fringe this is hair: the robust fit discards it)
)
# The forehead above the brows, where a fringe lies on skin: the oval's upper arc, then back along the brows.
FOREHEAD = np.array([21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 300, 293, 334, 296, 336, 107, 66, 105, 63,
                     70])
JAW = np.array([234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323,
                454])


@dataclass
class SkinMask:
    """A soft skin mask at reduced resolution and the factor from full-resolution pixels to its pixels."""

    mask: np.ndarray  # (h, w) float32 in [0, 1]
    scale: float  # mask pixel = full-resolution pixel × scale
    skin_lab: np.ndarray  # (3,) the face's median skin colour in Lab (L 0..100)
    hands: int = 0  # hands found in the frame
    hand_pixels: int = 0  # mask pixels that would be skin but a hand covers them

    def sample(self, pixels: np.ndarray) -> np.ndarray:
        """Mask values (N,) at full-resolution pixel positions (N, 2) x, y (nearest mask pixel)."""
        h, w = self.mask.shape
        col = np.clip((pixels[:, 0] * self.scale).astype(np.int64), 0, w - 1)
        row = np.clip((pixels[:, 1] * self.scale).astype(np.int64), 0, h - 1)
        return self.mask[row, col]


def _polygon(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas


def _minus(region: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """uint8 0/1: ``region`` without ``cut``. (``region - cut`` on uint8 wraps 0 − 1 to 255, which a clip to [0, 1]
    turned into 1: the whole oval became "around" the face and every hole in it came back.)"""
    return ((region > 0) & (cut == 0)).astype(np.uint8)


def _lab(image: np.ndarray) -> np.ndarray:
    """Float Lab with L in 0..100 and a, b around 0 (OpenCV's float conversion)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def skin_colour_model(lab: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust mean and inverse covariance of the chroma (a, b), and the median lightness, of reference pixels.

    Two passes: the second keeps the reference pixels within 2.5 σ of the first fit, so a fringe over the forehead
    or a beard on the chin does not widen the model.
    """
    pixels = lab[reference.astype(bool)]
    if len(pixels) < 20:
        pixels = lab.reshape(-1, 3)
    chroma = pixels[:, 1:]
    keep = np.ones(len(pixels), bool)
    for _ in range(2):
        mean = np.median(chroma[keep], axis=0)
        cov = np.cov((chroma[keep] - mean).T) + np.eye(2) * 4.0  # floor: grey photos have no chroma spread
        inverse = np.linalg.inv(cov)
        d2 = np.einsum("ni,ij,nj->n", chroma - mean, inverse, chroma - mean)
        lightness = pixels[:, 0]
        keep = (d2 < 2.5 ** 2) & (np.abs(lightness - np.median(lightness[keep])) < 30)
        if keep.sum() < 20:
            keep = np.ones(len(pixels), bool)
            break
    return mean, inverse, np.array([np.median(pixels[keep, 0]), mean[0], mean[1]], np.float32)


def colour_likelihood(lab: np.ndarray, mean: np.ndarray, inverse: np.ndarray, lightness: float,
                      chroma_sigma: float, dark: float, bright: float) -> np.ndarray:
    """Soft skin likelihood (h, w) in [0, 1]: chroma within ``chroma_sigma`` σ and lightness within a range.

    ``dark``/``bright`` are how far below/above the face's median lightness (Lab L units) skin may be: shading makes
    skin darker much more often than brighter.
    """
    delta = lab[..., 1:] - mean
    d = np.sqrt(np.einsum("...i,ij,...j->...", delta, inverse, delta))
    chroma = np.clip((chroma_sigma + 1.0 - d) / 1.0, 0.0, 1.0)
    offset = lab[..., 0] - lightness
    light = np.clip(1.0 - (-offset - dark) / 10.0, 0.0, 1.0) * np.clip(1.0 - (offset - bright) / 10.0, 0.0, 1.0)
    return (chroma * light).astype(np.float32)


def white_likelihood(lab: np.ndarray, skin_chroma: np.ndarray, lightness: float) -> np.ndarray:
    """Soft (h, w) in [0, 1]: how much a pixel looks white (a tooth, a white collar, a bright background) beside skin
    of mean chroma ``skin_chroma`` (a, b) and median ``lightness``: a chroma under `WHITE_CHROMA_SHARE` of the
    skin's and no more than 10 L* darker than it, or (what a pale or grey photo leaves to tell by) more than
    `WHITE_BRIGHTER` L* brighter than the skin."""
    brighter = np.clip((lab[..., 0] - (lightness + WHITE_BRIGHTER)) / 5.0 + 0.5, 0.0, 1.0)
    skin = float(np.hypot(*skin_chroma))
    if skin < 6.0:  # no colour to tell teeth by
        return brighter.astype(np.float32)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    white = np.clip((WHITE_CHROMA_SHARE * skin - chroma) / (0.15 * skin) + 0.5, 0.0, 1.0)
    light = np.clip((lab[..., 0] - (lightness - 10.0)) / 5.0 + 0.5, 0.0, 1.0)
    return np.maximum(white * light, brighter).astype(np.float32)


def _gaussian(pixels: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, inverse covariance and log-determinant of a robust 3-D Lab Gaussian."""
    mean = np.median(pixels, axis=0)
    cov = np.cov((pixels - mean).T) + np.diag(floor)
    sign, logdet = np.linalg.slogdet(cov)
    return mean, np.linalg.inv(cov), float(logdet)


def hair_contrast(lab: np.ndarray, skin_pixels: np.ndarray, hair_pixels: np.ndarray) -> np.ndarray | None:
    """(h, w) in [0, 1]: how much more a pixel looks like the face's skin than like the hair above the forehead.

    ``hair_pixels`` are sampled in a band above the forehead: hair, a hat, or the background behind a bald head.
    ``None`` when that band looks like the skin itself (a bald head against a skin-coloured wall), or is too
    small to fit: then the contrast says nothing.
    """
    if len(hair_pixels) < 30 or len(skin_pixels) < 30:
        return None
    floor = np.array([9.0, 4.0, 4.0])
    skin = _gaussian(skin_pixels, floor)
    hair = _gaussian(hair_pixels, floor)
    delta = hair[0] - skin[0]
    if float(delta @ skin[1] @ delta) < 2.5 ** 2:
        return None

    def log_likelihood(model: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
        d = lab - model[0]
        return -0.5 * (np.einsum("...i,ij,...j->...", d, model[1], d) + model[2])

    ratio = np.clip(log_likelihood(skin) - log_likelihood(hair), -30.0, 30.0)
    return (1.0 / (1.0 + np.exp(-ratio))).astype(np.float32)


def smoothness(lightness: np.ndarray, reference: np.ndarray, window: int) -> np.ndarray:
    """(h, w) in [0, 1]: 1 where the local spread of lightness is like the reference skin's, 0 where it is far
    busier (the standard deviation of L in a ``window`` box over max(3 × the cheeks' median, theirs + 6))."""
    mean = cv2.blur(lightness, (window, window))
    spread = np.sqrt(np.maximum(cv2.blur(lightness * lightness, (window, window)) - mean * mean, 0.0))
    cheeks = spread[reference > 0]
    typical = float(np.median(cheeks)) if len(cheeks) >= 20 else 2.0
    limit = max(3.0 * typical, typical + 6.0)
    return np.clip((1.5 * limit - spread) / (0.5 * limit), 0.0, 1.0).astype(np.float32)


def _neck_until_first_break(mask: np.ndarray, neck: np.ndarray, gap: int, start: int) -> np.ndarray:
    """``mask`` with, in every image column, the neck pixels below the first run of more than ``gap`` non-skin
    pixels under the jaw removed: skin below a collar or a necklace is the chest, not the neck. A column's skin must
    begin within ``start`` pixels of the jaw."""
    rows = np.nonzero(neck.any(1))[0]
    if len(rows) == 0:
        return mask
    out = mask.copy()
    gaps = np.zeros(mask.shape[1], np.int32)
    alive = np.ones(mask.shape[1], bool)
    started = np.zeros(mask.shape[1], bool)  # a column's run starts at its first skin pixel in the neck ...
    depth = np.zeros(mask.shape[1], np.int32)
    # Skin by the share of skin in a run of ``gap`` rows: a necklace's bright beads do not bridge its dark links.
    dense = cv2.blur((mask > 0.5).astype(np.float32), (1, gap)) > 0.6
    for row in range(int(rows[0]), int(rows[-1]) + 1):
        zone = neck[row]
        skin = dense[row]
        depth += zone
        started |= zone & skin
        alive &= started | (depth <= start)  # ... close under the jaw (its shadow aside), or the column has no neck
        counting = zone & started
        gaps = np.where(counting & ~skin, gaps + 1, np.where(counting, 0, gaps))
        alive &= gaps <= gap // 2
        out[row] = np.where(zone & ~alive, 0.0, out[row])
    return out


AUTO = "auto"


def frame_hands(image: np.ndarray, hands: "list[Hand] | str | None" = AUTO) -> list[Hand]:
    """The hands to keep out of a frame's skin: ``hands`` itself when given, none for ``None``, else what the shared
    detector finds (none, after one warning, when its models are missing)."""
    if hands is None:
        return []
    if isinstance(hands, str):
        if hands != AUTO:
            raise ValueError(f"hands must be a list of Hand, None or {AUTO!r}, not {hands!r}")
        detector = shared_detector()
        return detector.detect(np.ascontiguousarray(image[..., :3])) if detector is not None else []
    return list(hands)


def skin_mask(image: np.ndarray, detection: Detection, hands: "list[Hand] | str | None" = AUTO) -> SkinMask | None:
    """The skin mask of one frame, or ``None`` when the landmarks are not MediaPipe's (no contours to use).

    ``hands`` (`frame_hands`): found by MediaPipe's hand models by default; a list to use given ones, ``None`` for
    none. `SkinMask.hand_pixels` counts the work-resolution pixels they took out."""
    if detection.scheme != "mediapipe478" or len(detection.landmarks) < 468:
        return None
    height, width = image.shape[:2]
    scale = min(1.0, WORK_SIZE / max(height, width))
    small = cv2.resize(image[..., :3], (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1.0 else np.ascontiguousarray(image[..., :3])
    shape = small.shape[:2]
    points = detection.landmarks[:, :2].astype(np.float32) * scale
    right, left = eye_centers(points)
    iod = float(np.linalg.norm(left - right))

    oval = _polygon(shape, points[FACE_OVAL])
    eyes = np.maximum(_polygon(shape, points[RIGHT_EYE_CONTOUR]), _polygon(shape, points[LEFT_EYE_CONTOUR]))
    # Lashes and the lid margin lie a little outside the lid landmarks; brows are hair.
    eyes = cv2.dilate(eyes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.09 * iod)) | 1,) * 2))
    brows = np.maximum(_polygon(shape, points[RIGHT_BROW]), _polygon(shape, points[LEFT_BROW]))
    mouth = _polygon(shape, points[INNER_LIPS])
    holes = np.maximum(np.maximum(eyes, brows), mouth)
    reference = np.zeros(shape, np.uint8)
    for patch in SKIN_PATCHES:
        reference = np.maximum(reference, _polygon(shape, points[list(patch)]))

    # Below the jaw: the jaw line pushed down by most of a face height is the neck's region.
    jaw = points[JAW]
    face_height = float(np.linalg.norm(points[152] - points[10]))
    down = np.array([0.0, 0.8 * face_height], np.float32)
    neck = _polygon(shape, np.concatenate([jaw, (jaw + down)[::-1]]))
    ring = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.35 * iod)) | 1,) * 2))
    # The ring is for the ears and the sides of the head; above the brows it would only catch hair.
    up = points[10] - points[152]
    up = up / max(float(np.linalg.norm(up)), 1e-6)
    brow_level = float(np.mean(np.concatenate([points[RIGHT_BROW], points[LEFT_BROW]]) @ up))
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    below_brows = (cols * up[0] + rows * up[1]) < brow_level
    around = _minus(np.maximum(neck, ring * below_brows), oval)

    lab = _lab(small)
    mean, inverse, skin_lab = skin_colour_model(lab, reference & (1 - holes))
    inside = colour_likelihood(lab, mean, inverse, float(skin_lab[0]), 4.0, dark=28.0, bright=25.0)
    outside = colour_likelihood(lab, mean, inverse, float(skin_lab[0]), 2.5, dark=30.0, bright=15.0)
    # Lips are skin texels of their own colour: only the lightness gate (a moustache is dark) applies there.
    lips = _minus(_polygon(shape, points[OUTER_LIPS]), mouth)
    lip_light = colour_likelihood(lab, mean, np.zeros((2, 2)), float(skin_lab[0]), 1.0, dark=45.0, bright=25.0)
    # ... and teeth, which a smile shows between the two lip contours, are not lips: whiter than the skin (in a photo
    # with colour at all) and not much darker than it.
    white = white_likelihood(lab, mean, float(skin_lab[0]))
    lips = lips * (1.0 - white)
    # A fringe is often close to skin in colour; the forehead is evenly lit, so its gate can be strict.
    forehead = _polygon(shape, points[FOREHEAD]) * oval
    strict = colour_likelihood(lab, mean, inverse, float(skin_lab[0]), 3.0, dark=20.0, bright=35.0)
    inside = inside * (1 - forehead) + np.minimum(inside, strict) * forehead
    # ... and where it is not, the hair's own colour (sampled above the forehead) tells it from skin.
    arc = points[FOREHEAD[:11]]
    band = _polygon(shape, np.concatenate([arc + 0.08 * face_height * up, (arc + 0.2 * face_height * up)[::-1]]))
    # Only the band's pixels that do not already pass as skin: a high hairline leaves forehead skin in the band.
    contrast = hair_contrast(lab, lab[(reference & (1 - holes)) > 0], lab[(band > 0) & (strict < 0.5)])
    crown = np.zeros(shape, np.uint8)
    if contrast is not None:
        # On the forehead only: lower down, shaded skin can look more like dark hair than like lit skin.
        skin_not_hair = np.clip((contrast - 0.5) / 0.4, 0.0, 1.0)
        inside = inside * (1 - forehead + forehead * skin_not_hair)
        # A high forehead continues above the landmarks' oval; with a hair model to stop at the hairline, keep it.
        crown = _minus(_polygon(shape, np.concatenate([arc, (arc + 0.12 * face_height * up)[::-1]])), oval)
        around = np.maximum(around, crown * strict * skin_not_hair)
    neck_only = (neck > 0) & (oval == 0)
    smooth = smoothness(lab[..., 0], reference & (1 - holes), max(3, round(0.02 * face_height)) | 1)
    # Not at the oval's border: the jaw's own edge is busy there, and a line cut along it would part neck and face.
    border = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.08 * face_height)) | 1,) * 2))
    outside = outside * np.where((neck_only | (ring > 0)) & (border == 0), smooth, 1.0)
    # Off the face, white is a collar or the background (a pale face's neck is as pale as the face, not whiter).
    mask = np.maximum(inside * oval * (1 - holes), lip_light * lips) + outside * around * (1.0 - white)
    mask = _neck_until_first_break(mask, neck_only, max(2, round(NECK_GAP * face_height)),
                                   max(3, round(NECK_START * face_height)))
    found = frame_hands(image, hands)
    hand_pixels = 0
    if found:
        covered = hand_mask(shape, found, scale)
        hand_pixels = int(((mask > 0.5) & (covered > 0)).sum())
        mask = mask * (1 - covered)
    # Keep only skin connected to the face: a skin-coloured background patch beside the head is not the neck.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    blobs = (mask > 0.5).astype(np.uint8)
    count, labels = cv2.connectedComponents(blobs)
    if count > 2:
        # Touching the oval or lying just outside it: the jaw's dark edge is a line between the neck and the face.
        near = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.03 * face_height)) | 1,) * 2))
        touching = np.unique(labels[(near > 0) & (blobs > 0)])
        mask = mask * np.isin(labels, touching[touching > 0]).astype(np.float32) \
            if len(touching[touching > 0]) else mask
    # On the upper forehead, pull the mask back from its borders before softening it: where the forehead turns
    # away under a fringe, a pixel-wide seam of hair left in the mask would be stretched over many texels.
    eroded = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.05 * iod)) | 1,) * 2))
    upper = cv2.dilate(forehead, np.ones((3, 3), np.uint8)) > 0
    mask = np.where(upper | (crown > 0), eroded, mask)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.01 * iod))
    return SkinMask(np.clip(mask, 0.0, 1.0).astype(np.float32), scale, skin_lab, len(found), hand_pixels)
