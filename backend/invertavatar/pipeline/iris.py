"""The eyes' colours, measured in the keyframes for the procedural eye texture: the iris inside the iris landmarks,
the sclera between the iris and the eyelid contour, and the iris' pattern.

The pattern is the iris sampled on a polar grid (``PATTERN_RINGS`` radii from ``PATTERN_INNER`` of the iris radius
to its rim × ``PATTERN_SECTORS`` angles, counter-clockwise from the subject's left as the camera sees it; the left
eye mirrored so both eyes' nasal sides agree), only where the lids leave the iris open and the pixel is no catch
light. Running sums over eyes and keyframes, like the colour. `IrisColour.pattern` gives it relative to its mean,
the lids' gaps filled around each ring, for texture/eyes.py to paint the person's iris instead of a flat disc.
"""

from __future__ import annotations

import json

import numpy as np

from ..detect import Detection
from ..detect.landmark_schemes import LEFT_EYE_CONTOUR, LEFT_IRIS, RIGHT_EYE_CONTOUR, RIGHT_IRIS


SCLERA_BRIGHTNESS = (0.8, 0.92)  # the albedo of a sclera, from a shaded grey-white to a bright white
PATTERN_RINGS, PATTERN_SECTORS = 16, 64
PATTERN_INNER = 0.3  # of the iris radius: the pupil of a photo lies inside
PATTERN_RANGE = (0.35, 1.8)  # the pattern's contrast relative to its mean, bounded
MIN_PATTERN_RADIUS = 4.0  # pixels: a smaller iris shows no pattern worth taking


def iris_polar(image: np.ndarray, contour: np.ndarray, centre: np.ndarray, radius: float,
               mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(rings, sectors, 3) float sRGB 0..1 samples of one iris on the polar grid and (rings, sectors) validity.

    Valid: inside the lid contour (the lids cover the iris' top and bottom) and not a catch light (a pixel much
    brighter than the iris' median). ``mirror`` flips the angle (the subject's left eye)."""
    import cv2

    rho = PATTERN_INNER + (1.0 - PATTERN_INNER) * (np.arange(PATTERN_RINGS) + 0.5) / PATTERN_RINGS
    phi = 2 * np.pi * (np.arange(PATTERN_SECTORS) + 0.5) / PATTERN_SECTORS
    angle = np.pi - phi if mirror else phi
    x = centre[0] + radius * rho[:, None] * np.cos(angle)[None] - 0.5
    y = centre[1] - radius * rho[:, None] * np.sin(angle)[None] - 0.5
    picture = np.ascontiguousarray(image[..., :3]).astype(np.float32) / 255.0
    samples = cv2.remap(picture, x.astype(np.float32), y.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    lids = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(lids, [np.round(contour).astype(np.int32)], 1)
    # The lid contour runs a little outside the lid's edge: keep clear of it by a sixth of the iris radius.
    margin = max(1, round(radius / 6))
    lids = cv2.erode(lids, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    open_ = cv2.remap(lids.astype(np.float32), x.astype(np.float32), y.astype(np.float32), cv2.INTER_LINEAR) > 0.99
    inside = (x >= 0) & (y >= 0) & (x <= image.shape[1] - 1) & (y <= image.shape[0] - 1)
    lightness = samples.mean(-1)
    valid = open_ & inside
    if valid.sum() >= 8:
        median = float(np.median(lightness[valid]))
        spread = float(np.median(np.abs(lightness[valid] - median))) + 0.01
        valid &= lightness < median + 4.0 * spread  # the catch light of a window or a lamp
    return samples.astype(np.float64), valid


def fill_rings(pattern: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """Fill the invalid sectors of every ring by interpolating around it (a ring is a circle), rings with nothing
    valid from the nearest ring that has something; ``None`` when nothing is valid at all."""
    rings, sectors = valid.shape
    filled = pattern.copy()
    has = valid.any(1)
    if not has.any():
        return None
    index = np.arange(sectors)
    for ring in np.nonzero(has)[0]:
        known = index[valid[ring]]
        wrapped = np.concatenate([known - sectors, known, known + sectors])
        for channel in range(pattern.shape[2]):
            values = np.tile(pattern[ring, valid[ring], channel], 3)
            filled[ring, :, channel] = np.interp(index, wrapped, values)
    good = np.nonzero(has)[0]
    for ring in np.nonzero(~has)[0]:
        filled[ring] = filled[good[np.argmin(np.abs(good - ring))]]
    return filled


def sclera_pixels(image: np.ndarray, contour: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """(N, 3) uint8 pixels of the eye's white: inside the lid contour, clear of the iris, the brighter half.

    The brighter half only: the lid margin, lashes and the lid's shadow also lie inside the contour.
    """
    import cv2

    x0, y0 = np.floor(contour.min(0)).astype(int)
    x1, y1 = np.ceil(contour.max(0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 - x0 < 3 or y1 - y0 < 2:
        return np.zeros((0, 3), np.uint8)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(contour - [x0, y0]).astype(np.int32)], 1)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8)) if mask.sum() > 40 else mask
    y, x = np.mgrid[y0:y1, x0:x1]
    clear = np.hypot(x + 0.5 - centre[0], y + 0.5 - centre[1]) > 1.2 * radius
    pixels = image[y0:y1, x0:x1][(mask > 0) & clear]
    if len(pixels) < 4:
        return np.zeros((0, 3), np.uint8)
    brightness = pixels.astype(np.float32).mean(1)
    return pixels[brightness >= np.median(brightness)]


class IrisColour:
    """Running means of the pixels inside both irises (the pupil's centre excluded) and of the scleras."""

    def __init__(self, total: np.ndarray | None = None, count: int = 0, sclera_total: np.ndarray | None = None,
                 sclera_count: int = 0) -> None:
        self.total = np.zeros(3) if total is None else np.asarray(total, np.float64)
        self.count = count
        self.sclera_total = np.zeros(3) if sclera_total is None else np.asarray(sclera_total, np.float64)
        self.sclera_count = sclera_count
        self.radius_total = 0.0  # iris radius / inter-ocular distance, summed over measured eyes
        self.radius_count = 0
        self.pattern_total = np.zeros((PATTERN_RINGS, PATTERN_SECTORS, 3))  # polar iris samples, summed
        self.pattern_weight = np.zeros((PATTERN_RINGS, PATTERN_SECTORS))

    def add(self, image: np.ndarray, detection: Detection) -> None:
        if detection.scheme != "mediapipe478" or len(detection.landmarks) < 478:
            return
        height, width = image.shape[:2]
        for iris, contour in ((LEFT_IRIS, LEFT_EYE_CONTOUR), (RIGHT_IRIS, RIGHT_EYE_CONTOUR)):
            centre, ring = detection.landmarks[iris[0]], detection.landmarks[iris[1:]]
            radius = float(np.linalg.norm(ring - centre, axis=1).mean())
            if radius < 2.0:
                continue  # too small to tell a colour
            iod = float(np.linalg.norm(detection.landmarks[LEFT_IRIS[0]] - detection.landmarks[RIGHT_IRIS[0]]))
            if iod > 0:
                self.radius_total += radius / iod
                self.radius_count += 1
            y, x = np.ogrid[0:height, 0:width]
            distance = np.hypot(x + 0.5 - centre[0], y + 0.5 - centre[1])
            ring_mask = (distance < 0.85 * radius) & (distance > 0.4 * radius)
            pixels = image[ring_mask][:, :3]
            if len(pixels):
                self.total += pixels.mean(0) / 255.0
                self.count += 1
            if radius >= MIN_PATTERN_RADIUS:
                samples, valid = iris_polar(image, detection.landmarks[contour], centre, radius,
                                            mirror=iris is LEFT_IRIS)
                self.pattern_total += samples * valid[..., None]
                self.pattern_weight += valid
            white = sclera_pixels(image[..., :3], detection.landmarks[contour], centre, radius)
            if len(white) >= 4:
                self.sclera_total += white.mean(0) / 255.0
                self.sclera_count += 1

    def colour(self) -> np.ndarray | None:
        return (self.total / self.count).astype(np.float32) if self.count else None

    def pattern(self) -> np.ndarray | None:
        """(rings, sectors, 3) float32: the iris as photographed relative to its mean colour (1 = the mean), lids'
        gaps filled around each ring; ``None`` when no eye was large and open enough."""
        seen = self.pattern_weight > 0
        if seen.sum() < 0.2 * seen.size:
            return None
        mean = self.pattern_total / np.maximum(self.pattern_weight, 1e-9)[..., None]
        filled = fill_rings(mean, seen)
        if filled is None:
            return None
        average = (mean[seen]).mean(0)
        relative = filled / np.maximum(average, 1e-3)
        return np.clip(relative, *PATTERN_RANGE).astype(np.float32)

    def sclera(self) -> np.ndarray | None:
        """The measured white of the eye (its brightness kept within ``SCLERA_BRIGHTNESS``), or None."""
        if not self.sclera_count:
            return None
        measured = self.sclera_total / self.sclera_count
        # The white of the eye sits in the lids' shadow and is lit less than the face: keep its tint (half of it:
        # lashes and veins tint it too), not its darkness, so the de-lit albedo's eyes are not grey.
        grey = float(measured.mean())
        tinted = grey + 0.5 * (measured - grey)
        return np.clip(tinted * (np.clip(grey, SCLERA_BRIGHTNESS[0], SCLERA_BRIGHTNESS[1]) / max(grey, 1e-3)),
                       0.0, 1.0).astype(np.float32)

    def sclera_photographed(self) -> np.ndarray | None:
        """The white of the eye as photographed (encoded RGB, 0..1; the brighter half of its pixels), or None: the
        photo's exposure for the albedo level (texture/albedo_level.py)."""
        return (self.sclera_total / self.sclera_count).astype(np.float32) if self.sclera_count else None

    def radius_iod(self) -> float | None:
        """The iris radius as a fraction of the inter-ocular distance (pupil centres), or None."""
        return self.radius_total / self.radius_count if self.radius_count else None

    def to_bytes(self) -> bytes:
        return json.dumps({"total": self.total.tolist(), "count": self.count,
                           "sclera_total": self.sclera_total.tolist(), "sclera_count": self.sclera_count,
                           "radius_total": self.radius_total, "radius_count": self.radius_count,
                           "pattern_total": np.round(self.pattern_total, 5).tolist(),
                           "pattern_weight": self.pattern_weight.tolist()}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "IrisColour":
        raw = json.loads(data)
        iris = cls(np.array(raw["total"]), int(raw["count"]), np.array(raw.get("sclera_total", [0.0, 0.0, 0.0])),
                   int(raw.get("sclera_count", 0)))
        iris.radius_total, iris.radius_count = float(raw.get("radius_total", 0.0)), int(raw.get("radius_count", 0))
        if "pattern_total" in raw:
            total, weight = np.array(raw["pattern_total"], np.float64), np.array(raw["pattern_weight"], np.float64)
            if total.shape == iris.pattern_total.shape and weight.shape == iris.pattern_weight.shape:
                iris.pattern_total, iris.pattern_weight = total, weight
        return iris
