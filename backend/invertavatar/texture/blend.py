"""Seamless fill of a skin tile: seen texels fade into a smooth skin (or scalp) tone with no step at the border.

The seen colours and the fill are joined by multi-band blending (Burt & Adelson): both are split into Laplacian
pyramids and each band is mixed with a blurred copy of a feathered mask, so coarse colour changes cross the coverage
border over a wide distance while pores and fine detail fade out over a few texels. The fill itself is the
low-frequency extension of the seen colours near the border (pull-push), relaxing towards the person's skin tone —
or the scalp tone on the cranium — with distance from anything seen.
"""

from __future__ import annotations

import cv2
import numpy as np


def feathered_alpha(known: np.ndarray, width: float) -> np.ndarray:
    """(H, W) blend weight of the seen colours: 0 outside the seen region, rising smoothly to 1 ``width`` texels in.

    ``known`` is the (H, W) confidence in [0, 1]. Only barely seen texels (a quarter of the median confidence or
    less) stay below full weight: a partial weight would halve the fine detail of everything seen at an angle.
    """
    seen = (known > 0.05).astype(np.uint8)
    if not seen.any():
        return np.zeros(known.shape, np.float32)
    inside = cv2.distanceTransform(seen, cv2.DIST_L2, 3)
    ramp = np.clip(inside / max(width, 1e-6), 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no kink where the ramp starts or ends
    return (ramp * np.clip(known * 2.0, 0.0, 1.0)).astype(np.float32)


def distance_from_seen(known: np.ndarray) -> np.ndarray:
    """(H, W) distance in texels from the nearest seen texel (0 on seen texels)."""
    unseen = (known <= 0.05).astype(np.uint8)
    if unseen.all():
        return np.full(known.shape, np.inf, np.float32)
    return cv2.distanceTransform(unseen, cv2.DIST_L2, 3)


def fill_target(extended: np.ndarray, tone: np.ndarray, distance: np.ndarray, reach: float) -> np.ndarray:
    """What unseen texels become: the blurred extension of the seen colours, relaxing to ``tone`` over ``reach``.

    ``extended`` (H,W,3) is the pull-push extension of the seen colours; ``tone`` (H,W,3) the skin/scalp tone map;
    ``distance`` (H,W) texels from the seen region.
    """
    sigma = max(1.0, reach / 8.0)
    low = cv2.GaussianBlur(extended, (0, 0), sigma)
    t = np.clip(distance / max(reach, 1e-6), 0.0, 1.0)[..., None]
    t = t * t * (3.0 - 2.0 * t)
    return (low * (1.0 - t) + tone * t).astype(np.float32)


def _pyramid_levels(shape: tuple[int, int], minimum: int = 8) -> int:
    levels = 0
    h, w = shape
    while min(h, w) >= 2 * minimum:
        h, w = (h + 1) // 2, (w + 1) // 2
        levels += 1
    return levels


def multiband_blend(first: np.ndarray, second: np.ndarray, alpha: np.ndarray, levels: int | None = None
                    ) -> np.ndarray:
    """``first`` where ``alpha`` is 1, ``second`` where it is 0, joined band by band (images (H,W,C) float32)."""
    levels = _pyramid_levels(alpha.shape) if levels is None else levels
    a_level, b_level, m_level = first.astype(np.float32), second.astype(np.float32), alpha.astype(np.float32)
    bands = []
    for _ in range(levels):
        a_down, b_down, m_down = cv2.pyrDown(a_level), cv2.pyrDown(b_level), cv2.pyrDown(m_level)
        size = (a_level.shape[1], a_level.shape[0])
        mask = m_level[..., None]
        bands.append((a_level - cv2.pyrUp(a_down, dstsize=size)) * mask
                     + (b_level - cv2.pyrUp(b_down, dstsize=size)) * (1.0 - mask))
        a_level, b_level, m_level = a_down, b_down, m_down
    mask = m_level[..., None]
    image = a_level * mask + b_level * (1.0 - mask)
    for band in reversed(bands):
        image = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])) + band
    return image


def seamless_fill(colour: np.ndarray, known: np.ndarray, extended: np.ndarray, tone: np.ndarray,
                  feather: float, reach: float) -> np.ndarray:
    """A whole tile: seen colours, feathered over ``feather`` texels into a fill that reaches ``tone`` at ``reach``.

    ``colour`` (H,W,3) seen colours (anything where unseen), ``known`` (H,W) confidence in [0, 1], ``extended`` the
    pull-push extension, ``tone`` (H,W,3) the target tone map.
    """
    target = fill_target(extended, tone, distance_from_seen(known), reach)
    alpha = feathered_alpha(known, feather)
    # Unseen texels of ``first`` take the extension, so no pyramid band sees a hole's arbitrary colour.
    first = np.where((known > 0.05)[..., None], colour, extended).astype(np.float32)
    return np.clip(multiband_blend(first, target, alpha), 0.0, 1.0)
