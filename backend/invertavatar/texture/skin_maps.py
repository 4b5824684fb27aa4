"""The skin material's maps, baked in the bundle's atlas layout: roughness, specular level and a detail normal map.

* **Roughness and specular** (`roughness_specular`) come from where a texel lies on the head, not from the photos:
  the T-zone (forehead, nose, chin) carries more sebum and is the shiniest part of a face — the region-wise
  specular fits of Weyrich et al. 2006 show the strongest, sharpest highlights on the forehead and nose — so it is
  smoother and more specular than the cheeks; the neck and the back of the head are rougher. The regions are placed
  on the head model's neutral mesh relative to its eyes, in units of the eye distance, so any model's UV layout
  gets them. Eyes are wet (near-mirror), teeth and gums glossy.
* **Normal** (`detail_normals`): the fine detail the photos show — pores, creases, fine wrinkles — as a tangent-space
  normal map (OpenGL convention: +X along U, +Y along V, as Blender and glTF use). It is a band-pass of the albedo's
  luminance (darker reads as deeper, the classic cavity assumption), soft-limited so that a brow or a mole does not
  become a pit, and faded out where the coverage map says the texel was filled rather than seen. Elsewhere the map
  is flat.

Values are Principled BSDF inputs: `Roughness` 0..1, `Specular IOR Level` 0..1 (0.5 = the Fresnel of the set IOR).
"""

from __future__ import annotations

import cv2
import numpy as np

from .atlas import FUSED_SLOTS, SLOTS, slot_pixels

SKIN_ROUGHNESS = 0.5  # cheeks
TZONE_ROUGHNESS = 0.36  # forehead, nose, chin: oilier, sharper highlights
BACK_ROUGHNESS = 0.58  # neck, ears and the back of the head
SKIN_SPECULAR = 0.5  # Specular IOR Level: the Fresnel of skin's IOR (1.4) as it is
TZONE_SPECULAR = 0.68
BACK_SPECULAR = 0.45
OTHER_SLOTS = {  # (roughness, specular) of the procedural parts; the overlays are transparent in Blender anyway
    "sclera": (0.06, 0.5), "iris": (0.06, 0.5), "teeth": (0.22, 0.5), "gums": (0.28, 0.5),
    "lacrimal": (0.05, 0.5), "eyelashes": (0.5, 0.3), "occlusion": (0.5, 0.5), "eye_blend": (0.5, 0.5),
}
DETAIL_BAND = (0.6, 3.5)  # texels (at the fusion's 1024² per tile): Gaussian sigmas of the band-pass
DETAIL_STRENGTH = 14.0  # height per luminance step → surface slope
DETAIL_LIMIT = 2.5  # robust standard deviations: the band-pass is soft-limited here (brows, moles, hair strands)
SEEN_COVERAGE = (0.08, 0.3)  # coverage (0..1; 1 = a sharp frontal view at a pixel per texel) fading detail in
MAP_TILE = 512  # roughness / specular: per skin tile (they are smooth)


def _smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def tzone_weight(points: np.ndarray, eye_centres: np.ndarray) -> np.ndarray:
    """(N,) 0..1: how much of the T-zone a point of the neutral head is (forehead centre, nose ridge, chin).

    ``points`` (N, 3) model space (+Y up, face towards +Z), ``eye_centres`` (2, 3). Distances are in eye distances
    from the point between the eyes, so the zones scale with the head.
    """
    middle = eye_centres.mean(0)
    iod = float(np.linalg.norm(eye_centres[0] - eye_centres[1])) or 0.064
    x = np.abs(points[:, 0] - middle[0]) / iod
    y = (points[:, 1] - middle[1]) / iod
    front = _smoothstep((points[:, 2] - middle[2]) / iod, -0.9, -0.5)  # the face, not the sides of the head
    forehead = _smoothstep(y, 0.3, 0.5) * (1.0 - _smoothstep(y, 1.4, 1.8)) * (1.0 - _smoothstep(x, 0.55, 0.85))
    nose = (_smoothstep(y, -0.85, -0.7) * (1.0 - _smoothstep(y, 0.2, 0.45))
            * (1.0 - _smoothstep(x, 0.16, 0.34)))
    chin = _smoothstep(y, -1.75, -1.6) * (1.0 - _smoothstep(y, -1.25, -1.1)) * (1.0 - _smoothstep(x, 0.25, 0.5))
    return np.clip(np.maximum(np.maximum(forehead, nose), chin) * front, 0.0, 1.0)


def _tile_points(model, slot: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    from .fusion import tile_geometry

    geometry = tile_geometry(model, slot, size)
    points = (model.vertices[geometry.corners.numpy()] * geometry.bary.numpy()[..., None]).sum(1)
    return geometry.texel.numpy(), points


def _spread(values: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """Blur ``values`` over the ``known`` texels only and carry them past the UV islands (normalised convolution),
    so that bilinear lookups at an island's border never fetch the background."""
    weight = cv2.GaussianBlur(known.astype(np.float32), (0, 0), sigma)
    blurred = cv2.GaussianBlur((values * known).astype(np.float32), (0, 0), sigma)
    spread = blurred / np.maximum(weight, 1e-6)
    wide = cv2.GaussianBlur(known.astype(np.float32), (0, 0), 4 * sigma)
    fallback = cv2.GaussianBlur((values * known).astype(np.float32), (0, 0), 4 * sigma) / np.maximum(wide, 1e-6)
    far = float(values[known].mean()) if known.any() else 0.0  # nowhere near an island: its mean
    return np.where(weight > 1e-3, spread, np.where(wide > 1e-4, fallback, far)).astype(np.float32)


_MAPS_CACHE: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}


def roughness_specular(model, tile: int = MAP_TILE) -> tuple[np.ndarray, np.ndarray]:
    """(2·tile, 2·tile) float32 roughness and specular-level atlases of ``model``'s layout (cached per model)."""
    key = (model.checksum, tile)
    if key in _MAPS_CACHE:
        return _MAPS_CACHE[key]
    size = 2 * tile
    roughness = np.full((size, size), SKIN_ROUGHNESS, np.float32)
    specular = np.full((size, size), SKIN_SPECULAR, np.float32)
    eyes = [model.regions.get(name) for name in ("eyeball_left", "eyeball_right")]
    if all(e is not None and len(e) for e in eyes):
        centres = np.stack([model.vertices[e].mean(0) for e in eyes])
    else:  # a model without eye regions: its landmark-free middle, eyes a little above it
        centres = np.array([[-0.032, 0.035, 0.09], [0.032, 0.035, 0.09]])
    face_region = model.regions.get("narrow_face")
    for slot in FUSED_SLOTS:
        texel, points = _tile_points(model, slot, tile)
        t = tzone_weight(points, centres)
        if slot == "face" and face_region is not None:
            from .fusion import tile_geometry

            corners = tile_geometry(model, slot, tile).corners.numpy()
            inner = np.isin(corners, face_region).mean(1)  # the inner face vs neck and ears
        else:
            inner = np.zeros(len(texel)) if slot == "back_head" else np.ones(len(texel))
        rough = np.full(tile * tile, BACK_ROUGHNESS, np.float32)
        spec = np.full(tile * tile, BACK_SPECULAR, np.float32)
        base_rough = BACK_ROUGHNESS + (SKIN_ROUGHNESS - BACK_ROUGHNESS) * inner
        base_spec = BACK_SPECULAR + (SKIN_SPECULAR - BACK_SPECULAR) * inner
        rough[texel] = base_rough + (TZONE_ROUGHNESS - base_rough) * t
        spec[texel] = base_spec + (TZONE_SPECULAR - base_spec) * t
        known = np.zeros(tile * tile, bool)
        known[texel] = True
        shape = (tile, tile)
        rows, cols = slot_pixels(SLOTS[slot], size)
        roughness[rows, cols] = _spread(rough.reshape(shape), known.reshape(shape), tile * 0.006)
        specular[rows, cols] = _spread(spec.reshape(shape), known.reshape(shape), tile * 0.006)
    for slot, (rough_value, spec_value) in OTHER_SLOTS.items():
        rows, cols = slot_pixels(SLOTS[slot], size)
        roughness[rows, cols] = rough_value
        specular[rows, cols] = spec_value
    if len(_MAPS_CACHE) > 8:
        _MAPS_CACHE.clear()
    _MAPS_CACHE[key] = (roughness, specular)
    return roughness, specular


def detail_normals(albedo: np.ndarray, coverage: np.ndarray, size: int | None = None) -> np.ndarray:
    """(S, S, 3) uint8 tangent-space normal map of the skin tiles' fine detail; S = ``size`` or the albedo's.

    ``albedo`` (N, N, 3) uint8 and ``coverage`` (N, N) uint8 are the bundle's atlases. Only the fused skin tiles
    get detail, and only where they were seen; every other texel is flat (0.5, 0.5, 1).
    """
    size = size or albedo.shape[0]
    if albedo.shape[0] != size:
        albedo = cv2.resize(albedo, (size, size), interpolation=cv2.INTER_AREA)
        coverage = cv2.resize(coverage, (size, size), interpolation=cv2.INTER_AREA)
    normals = np.zeros((size, size, 3), np.float32)
    normals[..., 2] = 1.0
    texels_per_fused = size / 2048.0  # the band is set for a 1024² tile (the fusion's own resolution)
    for slot in FUSED_SLOTS:
        rows, cols = slot_pixels(SLOTS[slot], size)
        tile = albedo[rows, cols].astype(np.float32) / 255.0
        luminance = tile @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        fine, coarse = (cv2.GaussianBlur(luminance, (0, 0), s * texels_per_fused) for s in DETAIL_BAND)
        band = fine - coarse
        seen = _smoothstep(coverage[rows, cols].astype(np.float32) / 255.0, *SEEN_COVERAGE)
        # Fade before differentiating: the step where seen texels meet the fill must not become a ridge.
        seen = cv2.GaussianBlur(seen, (0, 0), DETAIL_BAND[1] * texels_per_fused)
        if not (seen > 0.5).any():
            continue
        spread = float(np.median(np.abs(band[seen > 0.5]))) * 1.4826 + 1e-6
        limit = DETAIL_LIMIT * spread
        height = limit * np.tanh(band / limit) * seen
        d_row, d_col = np.gradient(height)
        # Image rows run down, V up: d/dv = −d/drow.
        slope_u, slope_v = DETAIL_STRENGTH * d_col / texels_per_fused, -DETAIL_STRENGTH * d_row / texels_per_fused
        vectors = np.stack([-slope_u, -slope_v, np.ones_like(height)], -1)
        normals[rows, cols] = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.clip(normals * 127.5 + 127.5 + 0.5, 0, 255).astype(np.uint8)


def bake_material_maps(model, albedo: np.ndarray, coverage: np.ndarray) -> dict[str, np.ndarray]:
    """The bundle's optional material textures: ``roughness`` and ``specular`` (grey uint8, a quarter of the
    albedo's side) and ``normal`` (RGB uint8, half of it: the fusion's resolution)."""
    roughness, specular = roughness_specular(model, max(albedo.shape[0] // 8, 64))
    return {"roughness": np.clip(roughness * 255 + 0.5, 0, 255).astype(np.uint8),
            "specular": np.clip(specular * 255 + 0.5, 0, 255).astype(np.uint8),
            "normal": detail_normals(albedo, coverage, albedo.shape[0] // 2)}
