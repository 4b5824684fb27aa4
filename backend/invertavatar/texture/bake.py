"""Compose the bundle's albedo and coverage atlas from the fused skin tiles and procedural eye/mouth textures."""

from __future__ import annotations

import cv2
import numpy as np

from .albedo_level import AlbedoLevel, fused_level
from .atlas import FUSED_SLOTS, SLOTS, slot_pixels
from .blend import seamless_fill
from .eyes import eye_tile
from .fill import SEEN_WEIGHT, confidence, mirror_fill, pull_push_fill, skin_tone
from .fusion import TextureFusion

FULL_CONFIDENCE = 0.5  # weight of one sharp, frontal, high-resolution view of a texel
FEATHER = 0.025  # of the tile size: how far into the seen region its colours fade in
REACH = 0.12  # of the tile size: how far from the seen region the fill has relaxed to the skin / scalp tone
SCALP_ABOVE_EYES = (0.045, 0.075)  # metres above the eyes where the cranium's scalp tone fades in (back-head tile)


def default_scalp_tone(skin: np.ndarray) -> np.ndarray:
    """A bald scalp: the skin tone, a little lighter and less red (it sees less sun than the face)."""
    grey = float(skin.mean())
    return np.clip(0.85 * skin + 0.15 * grey + 0.02, 0.0, 1.0).astype(np.float32)


_SCALP_CACHE: dict[tuple[str, str, int], np.ndarray] = {}


def scalp_weight(model, slot: str, size: int) -> np.ndarray:
    """(size, size) 0..1: how much of a texel is cranium (the back-head tile above the ears), from the neutral mesh."""
    key = (model.checksum, slot, size)
    if key not in _SCALP_CACHE:
        if len(_SCALP_CACHE) > 8:
            _SCALP_CACHE.clear()  # a few models and sizes at a time: a long-running server must not grow it
        _SCALP_CACHE[key] = _scalp_weight(model, slot, size)
    return _SCALP_CACHE[key]


def _scalp_weight(model, slot: str, size: int) -> np.ndarray:
    from .fusion import tile_geometry

    weight = np.zeros(size * size, np.float32)
    if slot != "back_head" or "eyeball_left" not in model.regions:
        return weight.reshape(size, size)
    geometry = tile_geometry(model, slot, size)
    points = (model.vertices[geometry.corners.numpy()] * geometry.bary.numpy()[..., None]).sum(1)
    eyes = np.concatenate([model.regions["eyeball_left"], model.regions["eyeball_right"]])
    height = points[:, 1] - float(model.vertices[eyes, 1].mean())
    low, high = SCALP_ABOVE_EYES
    t = np.clip((height - low) / (high - low), 0.0, 1.0)
    weight[geometry.texel.numpy()] = t * t * (3.0 - 2.0 * t)
    weight = weight.reshape(size, size)
    # Spread past the mesh's UV islands a little so the blend pyramid sees no hard edge at an island border.
    return cv2.GaussianBlur(weight, (0, 0), max(size * 0.01, 0.5))


#: sRGB-encoded albedo of the mouth when no photo shows it open: ivory teeth, a gum's and tongue's red.
DEFAULT_TEETH = np.array([0.93, 0.9, 0.82], np.float32)
DEFAULT_GUMS = np.array([0.62, 0.27, 0.27], np.float32)


def procedural_tiles(model, size: int, skin: np.ndarray, iris: np.ndarray, sclera: np.ndarray | None = None,
                     iris_radius_iod: float | None = None, iris_pattern: np.ndarray | None = None,
                     mouth: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Plausible colours for the parts photos rarely show: mouth interior, eyes, lashes and eye overlays.

    ``sclera`` is the measured white of the eye (pipeline/iris.py); a slightly warm off-white when not measured.
    ``iris_pattern`` is the photographed iris relative to its mean (`IrisColour.pattern`); a flat disc without it.
    ``mouth`` may give the ``"teeth"`` and ``"gums"`` colours measured in an open mouth (pipeline/mouth.py);
    `DEFAULT_TEETH` and `DEFAULT_GUMS` otherwise.
    """
    sclera = np.array([0.86, 0.83, 0.8], np.float32) if sclera is None else sclera
    mouth = mouth or {}
    gradient = np.linspace(0.9, 1.05, size, dtype=np.float32)[:, None, None]
    return {
        "gums": np.broadcast_to(np.clip(mouth.get("gums", DEFAULT_GUMS) * gradient, 0, 1), (size, size, 3)),
        "teeth": np.broadcast_to(np.clip(mouth.get("teeth", DEFAULT_TEETH) * gradient, 0, 1), (size, size, 3)),
        "sclera": eye_tile(model, "sclera", size, iris, sclera, iris_radius_iod, iris_pattern),
        "iris": eye_tile(model, "iris", size, iris, sclera, iris_radius_iod, iris_pattern),
        "lacrimal": np.broadcast_to(np.array([0.85, 0.72, 0.72]), (size, size, 3)),
        "eyelashes": np.broadcast_to(np.array([0.07, 0.05, 0.045]), (size, size, 3)),
        "occlusion": np.broadcast_to(skin * 0.7, (size, size, 3)),
        "eye_blend": np.broadcast_to(skin, (size, size, 3)),
    }


def fill_skin_tile(fusion: TextureFusion, name: str, skin: np.ndarray, scalp: np.ndarray,
                   photographed: bool = False, size: int | None = None, level: AlbedoLevel | None = None
                   ) -> np.ndarray:
    """One fused skin tile, every texel filled (float32 (N, N, 3) in [0, 1]); N is the fusion's resolution or a
    smaller ``size`` (the colours are then averaged down by their weights first). ``level`` puts the fused colours
    at their physical level first (texture/albedo_level.py)."""
    colour, weight = fusion.mean_colour(name, photographed)
    if level is not None:
        colour = level.apply(colour)
    size = size or fusion.tile_size
    if size != fusion.tile_size:
        premultiplied = cv2.resize(colour * weight[..., None], (size, size), interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, (size, size), interpolation=cv2.INTER_AREA)
        colour = premultiplied / np.maximum(weight, 1e-8)[..., None]
    mirrored, mirrored_weight = mirror_fill(colour, weight)
    extended = pull_push_fill(mirrored, mirrored_weight, skin)
    scalp_map = scalp_weight(fusion.model, name, size)[..., None]
    tone = (skin * (1.0 - scalp_map) + scalp * scalp_map).astype(np.float32)
    return seamless_fill(mirrored, confidence(mirrored_weight), extended, tone, FEATHER * size, REACH * size)


def _tones(fusion: TextureFusion, scalp_colour: np.ndarray | None, photographed: bool,
           level: AlbedoLevel | None = None) -> tuple[np.ndarray, np.ndarray]:
    colour, weight = fusion.mean_colour("face", photographed)
    skin = skin_tone(level.apply(colour) if level is not None else colour, weight)
    scalp = np.asarray(scalp_colour, np.float32) if scalp_colour is not None else default_scalp_tone(skin)
    return skin, scalp


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def bake_atlas(fusion: TextureFusion, iris_colour: np.ndarray | None = None, skin_tile: int = 2048, *,
               sclera_colour: np.ndarray | None = None, scalp_colour: np.ndarray | None = None,
               iris_radius_iod: float | None = None, sclera_photographed: np.ndarray | None = None,
               physical_level: bool = True, iris_pattern: np.ndarray | None = None, mouth=None
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Albedo (S,S,3) uint8, coverage (S,S) uint8 and coverage figures; S = 2 × ``skin_tile``.

    The skin tiles are fused at the fusion's own resolution and resampled to ``skin_tile`` (2048² by default).
    With ``physical_level`` the fused skin is first put at a level skin can have (texture/albedo_level.py; the
    white of the eye as photographed, ``sclera_photographed``, tells the photo's exposure); ``figures`` then holds
    ``albedo_level``. Unseen skin is filled seamlessly (texture/blend.py) towards the skin tone, and on the cranium
    towards ``scalp_colour`` (a hair colour the user picked; a bald-scalp tone by default). ``mouth`` (a
    pipeline/mouth.py `MouthColour`) gives the teeth and gums the open mouth's colours relative to the skin's albedo;
    ``figures["mouth"]`` then names the colours used.
    """
    tile = skin_tile
    size = 2 * tile
    albedo = np.zeros((size, size, 3), np.uint8)
    coverage = np.zeros((size, size), np.uint8)
    level = fused_level(fusion, sclera_photographed) if physical_level else None
    skin, scalp = _tones(fusion, scalp_colour, False, level)
    figures = {}
    for name in FUSED_SLOTS:
        weight = fusion.mean_colour(name)[1]
        covered = fusion.coverage_mask(name)
        figures[f"coverage_{name}"] = float((weight[covered] > SEEN_WEIGHT).mean()) if covered.any() else 0.0
        filled = fill_skin_tile(fusion, name, skin, scalp, level=level)
        confidence_map = np.clip(weight / FULL_CONFIDENCE * 255, 0, 255).astype(np.uint8)
        rows, cols = slot_pixels(SLOTS[name], size)
        albedo[rows, cols] = _to_uint8(cv2.resize(filled, (tile, tile), interpolation=cv2.INTER_CUBIC))
        coverage[rows, cols] = cv2.resize(confidence_map, (tile, tile), interpolation=cv2.INTER_LINEAR)
    counts = {name: fusion.coverage_mask(name).sum() for name in FUSED_SLOTS}
    figures["coverage"] = float(sum(figures[f"coverage_{n}"] * counts[n] for n in FUSED_SLOTS) / sum(counts.values()))
    iris = iris_colour if iris_colour is not None else np.array([0.35, 0.25, 0.18], np.float32)
    sclera = np.asarray(sclera_colour, np.float32) if sclera_colour is not None else None
    mouth_colours = mouth.colours(skin) if mouth is not None else {}
    figures["mouth"] = {name: [round(float(c), 4) for c in colour] for name, colour in mouth_colours.items()}
    for name, image in procedural_tiles(fusion.model, tile // 2, skin, np.asarray(iris, np.float32),
                                        sclera, iris_radius_iod, iris_pattern, mouth_colours).items():
        rows, cols = slot_pixels(SLOTS[name], size)
        albedo[rows, cols] = _to_uint8(image)
    figures["skin_tone"] = [round(float(c), 4) for c in skin]
    figures["scalp_tone"] = [round(float(c), 4) for c in scalp]
    if level is not None:
        figures["albedo_level"] = level.manifest()
    return albedo, coverage, figures


def bake_photographed(fusion: TextureFusion, albedo: np.ndarray, scalp_colour: np.ndarray | None = None
                      ) -> np.ndarray:
    """The as-photographed atlas (shading left in) at half the albedo's size, same layout as ``albedo``.

    Only the skin tiles differ from the albedo (the eyes and mouth are procedural either way); it is a reference for
    artists and a texture for renderers without lights, so half the resolution is enough.
    """
    size = albedo.shape[0] // 2
    atlas = cv2.resize(albedo, (size, size), interpolation=cv2.INTER_AREA)
    skin, scalp = _tones(fusion, scalp_colour, True)
    for name in FUSED_SLOTS:
        rows, cols = slot_pixels(SLOTS[name], size)
        tile = (rows.stop - rows.start, cols.stop - cols.start)
        filled = fill_skin_tile(fusion, name, skin, scalp, photographed=True, size=fusion.tile_size // 2)
        atlas[rows, cols] = _to_uint8(cv2.resize(filled, (tile[1], tile[0]), interpolation=cv2.INTER_LINEAR))
    return atlas
