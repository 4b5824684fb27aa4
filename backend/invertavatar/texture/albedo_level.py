"""The de-lit albedo's physical level: resolve the light × albedo scale with what skin can be and what the photo says.

De-lighting (texture/delight.py) normalises each frame's shading to a mean of 1, so the fused albedo keeps the
photo's exposure: a brightly lit fair face comes out brighter than any measured skin, a dim one darker. The product
of light and albedo is all a photo shows, so the split needs outside knowledge. Two kinds are used here:

* **What skin can be** (`SKIN_LAB`): measured facial skin spans a bounded range of CIE L*a*b* (the sources are cited
  in docs/how-it-works.md, section *Albedo level*). The face's mean albedo is only ever *moved into* that range —
  bounds, not a pull towards an average: a face inside it keeps its level, a dark face is never lightened because
  it is dark.
* **What the photo says about its exposure**: the white of the eye (measured in the photo by pipeline/iris.py) has
  a known albedo range; seen at level ``m`` the exposure is at least ``m / SCLERA_ALBEDO[1]`` (the lids, lashes
  and glasses only ever take light away from it), which caps the face's albedo. The converse — a dim sclera lifting
  the face — is used only when the sclera is unmistakably the eye's white: at least `SCLERA_OVER_FACE` times the
  face's level in the same photos. Then the photo is under-exposed by at least ``SCLERA_ALBEDO[0] / m`` (the
  dimmest white of an eye), and the face is lifted by that much, no more. Without that guard, eyes in the shade of
  glasses or lids, or a few pixels wide, lifted faces of medium skin to the top of the skin range on the devset.
  A face darker than any skin is lifted to the range's edge only.
  How much of the skin the photos clipped (`FusionExposure`) is recorded beside it.

Everything is in linear sRGB (the atlas PNG is sRGB-encoded, as Blender reads it). The result is one gain per
channel: a scalar exposure, then per channel only as much change as brings that channel into the skin range
(a white balance bounded the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Facial skin in CIE L*a*b* (D65): L* from below the darkest to above the lightest measured faces; a*, b* around
# the measured range (docs/how-it-works.md, *Albedo level*, for the numbers and where they come from).
SKIN_LAB = {"L": (22.0, 75.0), "a": (6.0, 26.0), "b": (8.0, 26.0)}
SCLERA_ALBEDO = (0.60, 0.83)  # linear: sRGB 0.80–0.92, pipeline/iris.py's SCLERA_BRIGHTNESS
CLIP_LEVEL = 250 / 255  # an encoded channel at or above this is clipped
INSIDE = 0.02  # a channel moved into the range lands this share inside its edge (resampling must not push it out)
MIN_REFERENCE = 0.02  # a sclera darker than this (linear) is not measured well enough to say anything
#: A photographed sclera lifts the exposure only when it is at least this many times the face's level: the fairest
#: skin is about half an eye's white (L* 70, luminance 0.41, against 0.60–0.83), so a sclera measured dimmer than
#: that relative to the face is the lids' shade, lashes or glasses, not an under-exposed eye.
SCLERA_OVER_FACE = 2.0
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])  # linear sRGB → relative luminance Y


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → linear (IEC 61966-2-1)."""
    c = np.asarray(encoded, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear values in [0, 1] → sRGB-encoded."""
    c = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65 white) → linear sRGB (not clipped). ``lab`` (..., 3)."""
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx, fz = fy + lab[..., 1] / 500.0, fy - lab[..., 2] / 200.0

    def inverse(f: np.ndarray) -> np.ndarray:
        return np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))

    xyz = np.stack([0.95047 * inverse(fx), inverse(fy), 1.08883 * inverse(fz)], -1)
    to_rgb = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                       [0.0556434, -0.2040259, 1.0572252]])
    return xyz @ to_rgb.T


def linear_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) → CIE L*a*b* (D65 white)."""
    to_xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
    xyz = np.asarray(rgb, np.float64) @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(np.maximum(xyz, 0.0)), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def skin_range() -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(3,) lowest and (3,) highest linear value per channel over the `SKIN_LAB` box, and the luminance range."""
    corners = np.array([[L, a, b] for L in SKIN_LAB["L"] for a in SKIN_LAB["a"] for b in SKIN_LAB["b"]])
    rgb = np.clip(lab_to_linear(corners), 0.0, 1.0)
    luminance = tuple(float(lab_to_linear(np.array([L, 0.0, 0.0]))[1]) for L in SKIN_LAB["L"])
    return rgb.min(0), rgb.max(0), luminance


@dataclass
class FusionExposure:
    """How much of the skin the photos clipped: weighted share of skin samples with a channel at `CLIP_LEVEL`."""

    clipped: float = 0.0
    total: float = 0.0

    def add(self, colour: np.ndarray, weight: np.ndarray) -> None:
        """``colour`` (N, 3) as photographed (encoded, 0..1) and ``weight`` (N,) of one frame's skin samples."""
        weight = np.asarray(weight, np.float64)
        self.clipped += float(weight[(np.asarray(colour) >= CLIP_LEVEL).any(1)].sum())
        self.total += float(weight.sum())

    @property
    def clipped_share(self) -> float:
        return self.clipped / self.total if self.total > 0 else 0.0


@dataclass(frozen=True)
class AlbedoLevel:
    """The gain per linear channel that puts the fused albedo at a physical level, and why."""

    gain: np.ndarray  # (3,) multiplies linear albedo
    exposure_scale: float  # the scalar part (1 / exposure relative to the photo's)
    measured: np.ndarray  # (3,) face mean, linear, as fused
    evidence: dict = field(default_factory=dict)

    @property
    def result(self) -> np.ndarray:
        return np.clip(self.measured * self.gain, 0.0, 1.0)

    def apply(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded colours (..., 3) in [0, 1] at the physical level (float32, encoded)."""
        if np.allclose(self.gain, 1.0):
            return np.asarray(encoded, np.float32)
        return linear_to_srgb(srgb_to_linear(encoded) * self.gain).astype(np.float32)

    def manifest(self) -> dict:
        lo, hi, _ = skin_range()
        return {"gain": [round(float(g), 4) for g in self.gain], "exposure_scale": round(self.exposure_scale, 4),
                "face_mean_linear_fused": [round(float(c), 4) for c in self.measured],
                "face_mean_linear": [round(float(c), 4) for c in self.result],
                "skin_range_linear": {"low": [round(float(c), 4) for c in lo], "high": [round(float(c), 4) for c in hi]},
                **self.evidence}


NEUTRAL = AlbedoLevel(np.ones(3), 1.0, np.zeros(3), {"method": "none"})


def face_mean(colour: np.ndarray, weight: np.ndarray, inner: np.ndarray) -> np.ndarray | None:
    """Mean linear colour (3,) of the well-seen inner-face texels, or None when too few were seen.

    ``colour`` (H, W, 3) encoded, ``weight`` (H, W), ``inner`` (H, W) bool: the inner face (the head model's
    `narrow_face` region: no neck, ears or scalp). Texels at or above the median weight count, as for the skin tone.
    """
    seen = inner & (weight > 1e-3)
    if seen.sum() < 50:
        return None
    confident = seen & (weight >= np.median(weight[seen]))
    return srgb_to_linear(colour[confident]).mean(0)


def choose_level(measured: np.ndarray, sclera: np.ndarray | None = None, clipped_share: float = 0.0
                 ) -> AlbedoLevel:
    """The gain that puts a face of mean linear colour ``measured`` (3,) at a physical level.

    ``sclera`` is the white of the eye as photographed (encoded RGB, 0..1), ``clipped_share`` the share of skin the
    photos clipped (recorded). The exposure scale starts at 1 (the photo's own level), is capped by the sclera's
    evidence (or lifted by it, when the sclera is unmistakable and dimmer than any eye's white), then bounded by
    the skin's luminance range; its chroma (a*, b*) is then bounded by the skin's (a desaturated or colour-cast
    photo gets the nearest skin chroma), and each channel by the skin's range of that channel. A bound that moves
    the face puts it `INSIDE` its edge.
    """
    measured = np.asarray(measured, np.float64)
    lo, hi, (y_lo, y_hi) = skin_range()
    luminance = float(measured @ LUMINANCE)
    evidence: dict = {"method": "skin-range", "clipped_share": round(clipped_share, 4)}
    scale = 1.0
    if sclera is not None:
        reference = float(srgb_to_linear(np.asarray(sclera, np.float64)) @ LUMINANCE)
        evidence["sclera_linear"] = round(reference, 4)
        if reference > MIN_REFERENCE:
            highest = SCLERA_ALBEDO[1] / reference  # the exposure is at least what makes the sclera this bright
            if highest < scale:
                evidence["method"] = "skin-range+sclera"
            scale = min(scale, highest)
            evidence["sclera_scale_cap"] = round(highest, 4)
            lowest = SCLERA_ALBEDO[0] / reference  # the exposure makes even the dimmest white of an eye this dim
            if lowest > scale and reference >= SCLERA_OVER_FACE * luminance:
                scale = lowest
                evidence["method"] = "skin-range+sclera-lift"
                evidence["sclera_scale_floor"] = round(lowest, 4)
    if luminance > 1e-6 and not y_lo <= luminance * scale <= y_hi:
        scale = float(np.clip(scale, y_lo * (1 + INSIDE) / luminance, y_hi * (1 - INSIDE) / luminance))
    scaled = measured * scale
    lab = linear_to_lab(scaled)
    chroma = np.array([lab[0], *(np.clip(lab[1 + i], *SKIN_LAB[k]) for i, k in enumerate("ab"))])
    if not np.allclose(chroma, lab):
        evidence["chroma_bounded"] = [round(float(v), 2) for v in lab[1:]]
        scaled = np.maximum(lab_to_linear(chroma), 1e-6)
    outside = (scaled < lo) | (scaled > hi)
    target = np.clip(scaled, lo * (1 + INSIDE), hi * (1 - INSIDE))
    gain = np.where(outside, target, scaled) / np.maximum(measured, 1e-9)
    return AlbedoLevel(gain, scale, measured, evidence)


_INNER_CACHE: dict[tuple[str, int], np.ndarray] = {}


def inner_face_mask(model, size: int) -> np.ndarray:
    """(size, size) bool: face-tile texels whose triangle lies in the model's `narrow_face` region (cached)."""
    key = (model.checksum, size)
    if key not in _INNER_CACHE:
        from .fusion import tile_geometry

        mask = np.zeros(size * size, bool)
        region = model.regions.get("narrow_face")
        geometry = tile_geometry(model, "face", size)
        inner = (np.isin(geometry.corners.numpy(), region).all(1) if region is not None
                 else np.ones(len(geometry.texel), bool))
        mask[geometry.texel.numpy()[inner]] = True
        if len(_INNER_CACHE) > 8:
            _INNER_CACHE.clear()
        _INNER_CACHE[key] = mask.reshape(size, size)
    return _INNER_CACHE[key]


def fused_level(fusion, sclera: np.ndarray | None = None) -> AlbedoLevel:
    """The albedo level of a `TextureFusion`'s face tile (`NEUTRAL` when the inner face was not seen)."""
    colour, weight = fusion.mean_colour("face")
    measured = face_mean(colour, weight, inner_face_mask(fusion.model, fusion.tile_size))
    if measured is None:
        return NEUTRAL
    return choose_level(measured, sclera, fusion.exposure.clipped_share)


def atlas_face_mean(albedo: np.ndarray, coverage: np.ndarray, model) -> np.ndarray | None:
    """Mean linear colour (3,) of a bundle atlas's well-seen inner face (``albedo`` uint8, ``coverage`` uint8)."""
    import cv2

    from .atlas import SLOTS, slot_pixels

    rows, cols = slot_pixels(SLOTS["face"], albedo.shape[0])
    tile = albedo[rows, cols].astype(np.float64) / 255.0
    seen = coverage[rows, cols].astype(np.float64) / 255.0
    size = tile.shape[0]
    inner = cv2.resize(inner_face_mask(model, 512).astype(np.uint8), (size, size),
                       interpolation=cv2.INTER_NEAREST) > 0
    return face_mean(tile, seen, inner)
