"""Hair colour as parameters of Blender's Principled Hair BSDF (Chiang et al. 2016, melanin parametrisation).

Blender's shader turns *Melanin* m and *Melanin Redness* r into an absorption coefficient:
``q = -ln(max(1 - m, 1e-4))``, eumelanin ``q·(1 - r)``, pheomelanin ``q·r``,
``σa = eumelanin·(0.506, 0.841, 1.653) + pheomelanin·(0.343, 0.733, 1.924)``, plus *Tint*'s absorption through
the colour mapping below (we treat a tinted fibre as the product of the two colours: close for a light dye).

The colour a head of hair shows for an absorption σa is the inverse of Chiang et al.'s fitted mapping from colour
to absorption, ``σa = (ln c / f(β))²`` with ``f(β) = 5.969 − 0.215β + 2.532β² − 10.73β³ + 5.574β⁴ + 0.245β⁵`` and
β the radial roughness, i.e. ``c = exp(−√σa · f(β))``. We fit (m, r) to the de-lit hair albedo in CIE Lab by a
dense search (two parameters, cheap and global), and put what melanin cannot make (dyed hair: pink, blue) into the
tint.
"""

from __future__ import annotations

import numpy as np

from ..texture.albedo_level import linear_to_srgb, srgb_to_linear

EUMELANIN = np.array([0.506, 0.841, 1.653])
PHEOMELANIN = np.array([0.343, 0.733, 1.924])
RADIAL_ROUGHNESS = 0.3
ROUGHNESS = 0.3  # the shader's default: smooth, combed hair; curly hair is rougher (see `hair_parameters`)
_GRID = np.linspace(0.0, 0.999, 160)


def _f(beta: float) -> float:
    return 5.969 - 0.215 * beta + 2.532 * beta ** 2 - 10.73 * beta ** 3 + 5.574 * beta ** 4 + 0.245 * beta ** 5


def melanin_absorption(melanin: np.ndarray, redness: np.ndarray) -> np.ndarray:
    """σa (..., 3) of Blender's melanin parametrisation."""
    quantity = -np.log(np.maximum(1.0 - np.asarray(melanin, np.float64), 1e-4))
    redness = np.asarray(redness, np.float64)
    return (quantity * (1 - redness))[..., None] * EUMELANIN + (quantity * redness)[..., None] * PHEOMELANIN


def fibre_colour(melanin: float | np.ndarray, redness: float | np.ndarray,
                 radial_roughness: float = RADIAL_ROUGHNESS) -> np.ndarray:
    """Linear RGB colour (..., 3) a fibre of that melanin reflects (Chiang et al.'s mapping, inverted)."""
    return np.exp(-np.sqrt(melanin_absorption(melanin, redness)) * _f(radial_roughness))


def _lab(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) → CIE Lab (D65)."""
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = np.asarray(linear, np.float64) @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


_TABLE = None


def fit_melanin(albedo: np.ndarray, radial_roughness: float = RADIAL_ROUGHNESS) -> tuple[float, float, np.ndarray]:
    """(melanin, redness, tint) whose fibre colour best matches a linear RGB ``albedo`` (3,) in Lab.

    The tint (linear RGB, 1 = none) takes the remaining ratio where melanin alone is off by more than a few ΔE.
    """
    global _TABLE
    if _TABLE is None or _TABLE[0] != radial_roughness:
        m, r = np.meshgrid(_GRID, np.linspace(0.0, 1.0, 81), indexing="ij")
        colours = fibre_colour(m, r, radial_roughness)
        _TABLE = (radial_roughness, m.ravel(), r.ravel(), colours.reshape(-1, 3), _lab(colours).reshape(-1, 3))
    _, m, r, colours, labs = _TABLE
    target = np.clip(np.asarray(albedo, np.float64), 1e-4, 1.0)
    error = np.linalg.norm(labs - _lab(target), axis=1)
    best = int(np.argmin(error))
    tint = np.ones(3)
    if error[best] > 4.0:  # what melanin cannot make: dyed hair
        tint = np.clip(target / np.maximum(colours[best], 1e-4), 0.0, 1.0)
        tint = tint / max(float(tint.max()), 1e-4)
        # The tint multiplies; find the melanin that, tinted, gives the target's lightness.
        tinted = colours * tint
        best = int(np.argmin(np.linalg.norm(_lab(tinted) - _lab(target), axis=1)))
    return float(m[best]), float(r[best]), tint


def hair_albedo(pixels_srgb: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The de-lit hair albedo (3,) linear from sRGB hair pixels (N, 3), times the keyframe's de-lighting ``gain``
    (3,) linear (the skin's albedo over its photographed colour).

    The colour is the median of the pixels between the 15th and the 60th lightness percentile: above that lie the
    sheen and highlights (the shader's specular lobes make those itself), below it the gaps between strands.
    """
    linear = srgb_to_linear(np.clip(pixels_srgb, 0.0, 1.0))
    lightness = linear @ np.array([0.2126, 0.7152, 0.0722])
    low, high = np.percentile(lightness, [15, 60])
    body = linear[(lightness >= low) & (lightness <= high)]
    if len(body) < 10:
        body = linear
    return np.clip(np.median(body, axis=0) * gain, 0.0, 1.0)


def hair_parameters(albedo: np.ndarray, tip_albedo: np.ndarray | None, curly: float = 0.0) -> dict:
    """hair.json's colour parameters of one group (docs/bundle-format.md) from its root (and tip) albedo."""
    melanin, redness, tint = fit_melanin(albedo)
    params = {"melanin": round(melanin, 4), "melanin_redness": round(redness, 4),
              "tint": [round(float(c), 4) for c in tint],
              "roughness": round(ROUGHNESS + 0.25 * float(np.clip(curly, 0, 1)), 3),
              "radial_roughness": RADIAL_ROUGHNESS, "coat": 0.1, "ior": 1.55, "random_color": 0.08,
              "random_roughness": 0.1, "tip": None,
              "root_colour": [round(float(c), 4) for c in albedo]}
    if tip_albedo is not None:
        tip_m, tip_r, _ = fit_melanin(tip_albedo)
        if abs(tip_m - melanin) > 0.05 or abs(tip_r - redness) > 0.1:
            params["tip"] = {"melanin": round(tip_m, 4), "melanin_redness": round(tip_r, 4)}
    return params


def parameter_colour(params: dict) -> np.ndarray:
    """The linear RGB a group's parameters reflect (for checks and the colour benchmark)."""
    return fibre_colour(params["melanin"], params["melanin_redness"], params["radial_roughness"]) \
        * np.asarray(params["tint"])


__all__ = ["fibre_colour", "fit_melanin", "hair_albedo", "hair_parameters", "linear_to_srgb", "parameter_colour"]
