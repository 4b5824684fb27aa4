"""Hair colour as parameters of Blender's Principled Hair BSDF (Chiang et al. 2016, *Melanin concentration* mode).

Blender's shader turns *Melanin* m and *Melanin Redness* r into an absorption coefficient:
``q = -ln(max(1 - m, 1e-4))``, eumelanin ``q·(1 - r)``, pheomelanin ``q·r``,
``σa = eumelanin·(0.506, 0.841, 1.653) + pheomelanin·(0.343, 0.733, 1.924)`` (`melanin_absorption`), plus the
*Tint*'s own absorption. What a head of such hair looks like also depends on the shader's specular lobes and its
multiple scattering, so the fit does not invert a formula: it searches a table **measured on Blender's own
shader** (``data/principled_hair_cycles.json``, made by backend/benchmarks/calibrate_hair_colour.py: a thick
curtain of strands rendered by Cycles under a uniform white world, the light under which a diffuse albedo renders
as itself, reduced to the same statistic `hair_albedo` takes from a photo). The search is dense in (m, r) on the
table interpolated in log colour, in CIE Lab. What melanin cannot make (dyed hair: pink, blue; the grey of a
black-and-white photo) goes into the tint, modelled as a factor on the colour.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..texture.albedo_level import linear_to_srgb, srgb_to_linear

EUMELANIN = np.array([0.506, 0.841, 1.653])
PHEOMELANIN = np.array([0.343, 0.733, 1.924])
RADIAL_ROUGHNESS = 0.3
ROUGHNESS = 0.3  # the shader's default: smooth, combed hair; curly hair is rougher (see `hair_parameters`)
TABLE_FILE = Path(__file__).with_name("data") / "principled_hair_cycles.json"
TINT_AFTER_DELTA_E = 4.0  # melanin's hue this far off the target's (a*, b*): the rest is a dye, in the tint


def melanin_absorption(melanin: np.ndarray, redness: np.ndarray) -> np.ndarray:
    """σa (..., 3) of Blender's melanin parametrisation."""
    quantity = -np.log(np.maximum(1.0 - np.asarray(melanin, np.float64), 1e-4))
    redness = np.asarray(redness, np.float64)
    return (quantity * (1 - redness))[..., None] * EUMELANIN + (quantity * redness)[..., None] * PHEOMELANIN


def _lab(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) → CIE Lab (D65)."""
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = np.asarray(linear, np.float64) @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


_TABLE: dict | None = None


def _table() -> dict:
    """The measured table, interpolated densely: melanin (M,), redness (R,), colour (M·R, 3) and its Lab."""
    global _TABLE
    if _TABLE is None:
        data = json.loads(TABLE_FILE.read_text())["table"]
        melanins = np.array(sorted({row["melanin"] for row in data}))
        rednesses = np.array(sorted({row["redness"] for row in data}))
        grid = np.zeros((len(melanins), len(rednesses), 3))
        for row in data:
            grid[np.searchsorted(melanins, row["melanin"]), np.searchsorted(rednesses, row["redness"])] = row["colour"]
        log = np.log(np.maximum(grid, 1e-5))
        fine_m, fine_r = np.linspace(0.0, melanins[-1], 200), np.linspace(0.0, 1.0, 41)
        along_m = np.stack([np.stack([np.interp(fine_m, melanins, log[:, j, c]) for c in range(3)], -1)
                            for j in range(len(rednesses))], 1)  # (200, R, 3)
        dense = np.stack([np.stack([np.interp(fine_r, rednesses, along_m[i, :, c]) for c in range(3)], -1)
                          for i in range(len(fine_m))], 0)  # (200, 41, 3)
        m, r = np.meshgrid(fine_m, fine_r, indexing="ij")
        colours = np.exp(dense).reshape(-1, 3)
        _TABLE = {"melanin": m.ravel(), "redness": r.ravel(), "colour": colours, "lab": _lab(colours)}
    return _TABLE


def hair_colour(melanin: float, redness: float) -> np.ndarray:
    """The linear colour (3,) a head of hair of this melanin shows in Cycles (the measured table, interpolated)."""
    table = _table()
    index = np.argmin((table["melanin"] - melanin) ** 2 + (table["redness"] - redness) ** 2)
    return table["colour"][index]


def fit_melanin(albedo: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(melanin, redness, tint) whose hair colour in Blender best matches a linear RGB ``albedo`` (3,), in Lab.

    When the best melanin's hue stays more than `TINT_AFTER_DELTA_E` off (a*, b*), a tint (linear RGB in 0..1, a
    factor per channel) takes a lighter melanin colour down to the target; of those, the one needing the weakest
    tint wins. Lightness alone is never put into the tint: below the darkest melanin the shader's specular
    reflection sets the floor, which a tint (it absorbs inside the fibre) does not lower.
    """
    table = _table()
    target = np.clip(np.asarray(albedo, np.float64), 1e-4, 1.0)
    goal = _lab(target)
    error = np.linalg.norm(table["lab"] - goal, axis=1)
    best = int(np.argmin(error))
    tint = np.ones(3)
    if np.linalg.norm(table["lab"][best, 1:] - goal[1:]) > TINT_AFTER_DELTA_E:
        tints = np.clip(target / np.maximum(table["colour"], 1e-6), 0.0, 1.0)
        error = np.linalg.norm(_lab(table["colour"] * tints) - goal, axis=1)
        best = int(np.argmin(error + 20.0 * (1.0 - tints.mean(axis=1))))
        tint = tints[best]
    return float(table["melanin"][best]), float(table["redness"][best]), tint


def hair_albedo(pixels_srgb: np.ndarray, gain: np.ndarray, band: tuple[float, float] = (15, 60)) -> np.ndarray:
    """The de-lit hair albedo (3,) linear from sRGB hair pixels (N, 3), times the keyframe's de-lighting ``gain``
    (3,) linear (the skin's albedo over its photographed colour).

    The colour is the median of the pixels in the ``band`` of lightness percentiles: above the scalp's (15, 60)
    lie the sheen and highlights (the shader's specular lobes make those itself), below it the gaps between
    strands. The calibration table (``data/``) takes the same statistic from its renders.
    """
    linear = srgb_to_linear(np.clip(pixels_srgb, 0.0, 1.0))
    lightness = linear @ np.array([0.2126, 0.7152, 0.0722])
    low, high = np.percentile(lightness, band)
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
    params["tip_colour"] = None
    if tip_albedo is not None:
        tip_m, tip_r, _ = fit_melanin(tip_albedo)
        if abs(tip_m - melanin) > 0.05 or abs(tip_r - redness) > 0.1:
            params["tip"] = {"melanin": round(tip_m, 4), "melanin_redness": round(tip_r, 4)}
            params["tip_colour"] = [round(float(c), 4) for c in tip_albedo]
    return params


def parameter_colour(params: dict) -> np.ndarray:
    """The linear colour a group's parameters show in Blender (for checks and the colour benchmark)."""
    return hair_colour(params["melanin"], params["melanin_redness"]) * np.asarray(params["tint"])


__all__ = ["fit_melanin", "hair_albedo", "hair_colour", "hair_parameters", "linear_to_srgb", "melanin_absorption",
           "parameter_colour"]
