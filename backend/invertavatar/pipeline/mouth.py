"""The mouth's colours, measured in the keyframes where the mouth is open, for the procedural teeth and gums tiles.

The opening is the polygon of MediaPipe's inner-lip contour, drawn in a little from the lips' edge. Inside it the
teeth are the bright pixels of low chroma and the mouth's interior (gums, tongue, palate) the darker red ones; the
black of the throat and the lips' own red rim are neither. Each kind is summed in linear sRGB together with the
face's colour in the same keyframe, so that what reaches the bake is a colour *relative to the skin as
photographed*: the bake multiplies it by the skin's albedo (texture/bake.py), which carries the de-lighting and the
exposure correction of the skin over to the mouth. Running sums over keyframes, like pipeline/iris.py's
`IrisColour`; saved in the bundle's state as ``mouth.json`` so a refinement adds to them.

Without an open mouth in any keyframe the bake keeps its plausible default teeth and gums.
"""

from __future__ import annotations

import json

import numpy as np

from ..detect import Detection
from ..texture.albedo_level import CLIP_LEVEL, LUMINANCE, linear_to_lab, linear_to_srgb, srgb_to_linear

#: MediaPipe's inner-lip contour, clockwise in the image from the right corner (78) over the upper lip to the left
#: corner (308) and back under the lower lip.
INNER_LIPS = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308,
                       324, 318, 402, 317, 14, 87, 178, 88, 95], np.int64)
UPPER_MIDDLE, LOWER_MIDDLE, RIGHT_CORNER, LEFT_CORNER = 13, 14, 78, 308
MIN_OPENING = 0.12  # inner-lip gap over mouth width: below it the mouth shows too little to measure
MIN_PIXELS = 12  # of one kind in one keyframe
TEETH_CHROMA = 22.0  # CIELAB C*: teeth are whiter than this ...
TEETH_LIGHTNESS = 0.55  # ... and at least this share of the opening's brightest (95th percentile) lightness
INTERIOR_RED = 8.0  # CIELAB a*: the interior is at least this red ...
INTERIOR_DARKEST = 8.0  # ... and not the throat's black (L* below this)
#: What the bake allows, as linear luminance: teeth are never darker than a shaded ivory nor whiter than a bleached
#: white; the interior lies between a deep red and a gum's pink.
TEETH_LUMINANCE = (0.35, 0.80)
INTERIOR_LUMINANCE = (0.04, 0.25)
MAX_RELATIVE = 6.0  # a colour over the face's: a dark face's white teeth are several times brighter than its skin


def mouth_opening(landmarks: np.ndarray) -> float:
    """The inner lips' gap at the middle over the mouth's width (corner to corner)."""
    width = float(np.linalg.norm(landmarks[LEFT_CORNER] - landmarks[RIGHT_CORNER]))
    return float(np.linalg.norm(landmarks[LOWER_MIDDLE] - landmarks[UPPER_MIDDLE])) / max(width, 1e-6)


def mouth_pixels(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(teeth, interior): (N, 3) float linear sRGB pixels inside the inner lips' opening, empty when closed."""
    import cv2

    empty = np.zeros((0, 3))
    if mouth_opening(landmarks) < MIN_OPENING:
        return empty, empty
    contour = landmarks[INNER_LIPS]
    x0, y0 = np.maximum(np.floor(contour.min(0)).astype(int), 0)
    x1, y1 = np.ceil(contour.max(0)).astype(int) + 1
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 - x0 < 4 or y1 - y0 < 3:
        return empty, empty
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(contour - [x0, y0]).astype(np.int32)], 1)
    # The contour runs along the lips' wet edge: keep a few per cent of the gap clear of it.
    gap = float(np.linalg.norm(landmarks[LOWER_MIDDLE] - landmarks[UPPER_MIDDLE]))
    margin = max(1, round(0.08 * gap))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    encoded = image[y0:y1, x0:x1, :3][mask > 0] / 255.0
    pixels = srgb_to_linear(encoded)
    if len(pixels) < 2 * MIN_PIXELS:
        return empty, empty
    lab = linear_to_lab(pixels)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    bright = np.percentile(lab[:, 0], 95)
    teeth = (chroma < TEETH_CHROMA) & (lab[:, 0] >= TEETH_LIGHTNESS * bright) & (lab[:, 0] > 30.0)
    interior = ~teeth & (lab[:, 1] >= INTERIOR_RED) & (lab[:, 0] >= INTERIOR_DARKEST)
    clipped = encoded.max(1) >= CLIP_LEVEL  # a clipped tooth has lost its tint: only when nothing else is left
    if np.count_nonzero(teeth & ~clipped) >= MIN_PIXELS:
        teeth &= ~clipped
    return pixels[teeth], pixels[interior]


def face_reference(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face's colour as photographed: the median (linear sRGB) of the landmarks' hull, mostly skin."""
    from ..evaluation.metrics import face_mask

    pixels = image[face_mask(landmarks, image.shape[:2])][:, :3]
    return srgb_to_linear(np.median(pixels, axis=0) / 255.0)


def _bounded(linear: np.ndarray, luminance: tuple[float, float]) -> np.ndarray:
    """``linear`` scaled so its luminance lies in ``luminance``, its hue kept; sRGB-encoded for the atlas."""
    y = float(linear @ LUMINANCE)
    scaled = linear * (np.clip(y, *luminance) / max(y, 1e-6))
    return linear_to_srgb(np.clip(scaled, 0.0, 1.0)).astype(np.float32)


class MouthColour:
    """Running sums of the open mouth's teeth and interior colours, each over the face's colour in its keyframe."""

    KINDS = ("teeth", "interior")

    def __init__(self) -> None:
        self.totals = {kind: np.zeros(3) for kind in self.KINDS}  # relative colour (pixel mean / face), summed
        self.counts = {kind: 0 for kind in self.KINDS}  # keyframes that showed it

    def add(self, image: np.ndarray, detection: Detection) -> None:
        if detection.scheme != "mediapipe478" or len(detection.landmarks) < 478:
            return
        teeth, interior = mouth_pixels(image, detection.landmarks)
        if len(teeth) < MIN_PIXELS and len(interior) < MIN_PIXELS:
            return
        face = np.maximum(face_reference(image, detection.landmarks), 1e-3)
        for kind, pixels in zip(self.KINDS, (teeth, interior)):
            if len(pixels) >= MIN_PIXELS:
                self.totals[kind] += np.minimum(pixels.mean(0) / face, MAX_RELATIVE)
                self.counts[kind] += 1

    def relative(self, kind: str) -> np.ndarray | None:
        """The mean colour of ``kind`` over the face's, per linear channel, or None when never seen."""
        return self.totals[kind] / self.counts[kind] if self.counts[kind] else None

    def colours(self, skin: np.ndarray) -> dict[str, np.ndarray]:
        """{"teeth": ..., "gums": ...}: sRGB-encoded albedo colours for the bake's tiles given the skin's albedo
        tone ``skin`` (sRGB-encoded); only the kinds the photos showed (the bake keeps its defaults for the rest)."""
        skin_linear = srgb_to_linear(np.asarray(skin, np.float64))
        result = {}
        for kind, tile, bounds in (("teeth", "teeth", TEETH_LUMINANCE), ("interior", "gums", INTERIOR_LUMINANCE)):
            relative = self.relative(kind)
            if relative is not None:
                result[tile] = _bounded(relative * skin_linear, bounds)
        return result

    def to_bytes(self) -> bytes:
        return json.dumps({"totals": {k: v.tolist() for k, v in self.totals.items()}, "counts": self.counts}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "MouthColour":
        raw = json.loads(data)
        mouth = cls()
        for kind in cls.KINDS:
            mouth.totals[kind] = np.array(raw["totals"].get(kind, [0.0, 0.0, 0.0]), np.float64)
            mouth.counts[kind] = int(raw["counts"].get(kind, 0))
        return mouth
