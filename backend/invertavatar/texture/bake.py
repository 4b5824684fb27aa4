"""Compose the bundle's albedo and coverage atlas from the fused skin tiles and procedural eye/mouth textures."""

from __future__ import annotations

import numpy as np

from .atlas import FUSED_SLOTS, SLOTS, slot_pixels
from .fill import SEEN_WEIGHT, mirror_fill, pull_push_fill, skin_tone
from .fusion import TextureFusion

FULL_CONFIDENCE = 0.5  # weight of one sharp, frontal, high-resolution view of a texel


def _radial(size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    return np.hypot((x + 0.5) / size - 0.5, (y + 0.5) / size - 0.5)


def eye_tile(model, slot: str, size: int, iris: np.ndarray, sclera: np.ndarray) -> np.ndarray:
    """An eyeball layer painted by angle from the eye's forward axis: pupil, iris, then sclera.

    Both of ICT's eyeball layers get the painting: the outer (sclera) layer is what an opaque material shows.
    """
    from .fusion import tile_geometry

    geometry = tile_geometry(model, slot, size)
    points = (model.vertices[geometry.corners.numpy()] * geometry.bary.numpy()[..., None]).sum(1)
    image = np.broadcast_to(sclera, (size * size, 3)).copy()
    for region in ("eyeball_left", "eyeball_right"):
        centre = model.vertices[model.regions[region]].mean(0)
        mine = np.sign(points[:, 0]) == np.sign(centre[0])
        direction = points[mine] - centre
        angle = np.degrees(np.arccos(np.clip(direction[:, 2] / np.linalg.norm(direction, axis=1), -1, 1)))
        colour = np.where(angle[:, None] < 9.0, 0.03, np.where(angle[:, None] < 24.0,
                                                                 iris * (1.15 - angle[:, None] / 60.0), sclera))
        image[geometry.texel.numpy()[mine]] = colour
    return image.reshape(size, size, 3)


def procedural_tiles(model, size: int, skin: np.ndarray, iris: np.ndarray) -> dict[str, np.ndarray]:
    """Plausible colours for the parts photos rarely show: mouth interior, eyes, lashes and eye overlays."""
    r = _radial(size)[..., None]
    sclera = np.array([0.92, 0.9, 0.87], np.float32)
    gradient = np.linspace(0.9, 1.05, size, dtype=np.float32)[:, None, None]
    return {
        "gums": np.broadcast_to(np.array([0.62, 0.27, 0.27]) * gradient, (size, size, 3)),
        "teeth": np.broadcast_to(np.array([0.93, 0.9, 0.82]) * gradient, (size, size, 3)),
        "sclera": eye_tile(model, "sclera", size, iris, sclera),
        "iris": eye_tile(model, "iris", size, iris, sclera),
        "lacrimal": np.broadcast_to(np.array([0.85, 0.72, 0.72]), (size, size, 3)),
        "eyelashes": np.broadcast_to(np.array([0.07, 0.05, 0.045]), (size, size, 3)),
        "occlusion": np.broadcast_to(skin * 0.7, (size, size, 3)),
        "eye_blend": np.broadcast_to(skin, (size, size, 3)),
    }


def bake_atlas(fusion: TextureFusion, iris_colour: np.ndarray | None = None,
               skin_tile: int = 2048) -> tuple[np.ndarray, np.ndarray, dict]:
    """Albedo (S,S,3) uint8, coverage (S,S) uint8 and coverage figures; S = 2 × ``skin_tile``.

    The skin tiles are fused at the fusion's own resolution and resampled to ``skin_tile`` (2048² by default).
    """
    import cv2

    tile = skin_tile
    size = 2 * tile
    albedo = np.zeros((size, size, 3), np.float32)
    coverage = np.zeros((size, size), np.uint8)
    face_colour, face_weight = fusion.mean_colour("face")
    skin = skin_tone(face_colour, face_weight)
    figures = {}
    for name in FUSED_SLOTS:
        colour, weight = fusion.mean_colour(name)
        covered = fusion.coverage_mask(name)
        figures[f"coverage_{name}"] = float((weight[covered] > SEEN_WEIGHT).mean()) if covered.any() else 0.0
        mirrored, mirrored_weight = mirror_fill(colour, weight)
        filled = pull_push_fill(mirrored, mirrored_weight, skin)
        confidence = np.clip(weight / FULL_CONFIDENCE * 255, 0, 255).astype(np.uint8)
        rows, cols = slot_pixels(SLOTS[name], size)
        albedo[rows, cols] = cv2.resize(filled, (tile, tile), interpolation=cv2.INTER_CUBIC)
        coverage[rows, cols] = cv2.resize(confidence, (tile, tile), interpolation=cv2.INTER_LINEAR)
    counts = {name: fusion.coverage_mask(name).sum() for name in FUSED_SLOTS}
    figures["coverage"] = float(sum(figures[f"coverage_{n}"] * counts[n] for n in FUSED_SLOTS) / sum(counts.values()))
    iris = iris_colour if iris_colour is not None else np.array([0.35, 0.25, 0.18], np.float32)
    for name, image in procedural_tiles(fusion.model, tile // 2, skin, np.asarray(iris, np.float32)).items():
        rows, cols = slot_pixels(SLOTS[name], size)
        albedo[rows, cols] = image
    figures["skin_tone"] = [round(float(c), 4) for c in skin]
    return (np.clip(albedo, 0, 1) * 255 + 0.5).astype(np.uint8), coverage, figures
