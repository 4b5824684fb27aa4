"""Fill unseen texels: the mirror texel where the other side of the face was seen, then a smooth pull-push fill."""

from __future__ import annotations

import cv2
import numpy as np

SEEN_WEIGHT = 1e-3


def mirror_fill(colour: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copy the horizontally mirrored texel into unseen texels (ICT's skin tiles are left-right symmetric in u).

    Returns the colour and a weight where mirrored texels count at half their source's weight.
    """
    seen = weight > SEEN_WEIGHT
    mirrored_seen = seen[:, ::-1]
    take = ~seen & mirrored_seen
    colour = colour.copy()
    weight = weight.copy()
    colour[take] = colour[:, ::-1][take]
    weight[take] = 0.5 * weight[:, ::-1][take]
    return colour, weight


def confidence(weight: np.ndarray) -> np.ndarray:
    """(H, W) how well each texel is known, in [0, 1]: its weight relative to the median seen texel's."""
    seen = weight > SEEN_WEIGHT
    median = float(np.percentile(weight[seen], 50)) if seen.any() else 1.0
    return np.minimum(weight / max(median, 1e-12), 1.0).astype(np.float32)


def pull_push_fill(colour: np.ndarray, weight: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Fill every texel: known colours spread smoothly into holes across an image pyramid.

    A tile with nothing seen takes ``fallback`` (the skin tone) everywhere.
    """
    known = confidence(weight)
    if not (known > 0).any():
        return np.broadcast_to(fallback.astype(np.float32), colour.shape).copy()
    levels = [(colour.astype(np.float32) * known[..., None], known)]
    while min(levels[-1][1].shape) > 1:
        premultiplied, w = levels[-1]
        size = (max(1, w.shape[1] // 2), max(1, w.shape[0] // 2))
        levels.append((cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    premultiplied, w = levels[-1]
    filled = premultiplied / np.maximum(w, 1e-6)[..., None]
    filled[w <= 1e-6] = fallback
    for premultiplied, w in reversed(levels[:-1]):
        coarse = cv2.resize(filled, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = premultiplied / np.maximum(w, 1e-6)[..., None]
        alpha = np.clip(w * 4.0, 0.0, 1.0)[..., None]  # a partly known texel keeps most of its own colour
        filled = own * alpha + coarse * (1.0 - alpha)
    return filled


def skin_tone(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Median colour of the confidently seen texels (a neutral skin tone when nothing was seen)."""
    confident = weight > np.percentile(weight[weight > SEEN_WEIGHT], 50) if (weight > SEEN_WEIGHT).any() else None
    if confident is None or not confident.any():
        return np.array([0.78, 0.6, 0.5], np.float32)
    return np.median(colour[confident], axis=0).astype(np.float32)
