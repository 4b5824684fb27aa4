"""Incremental texture fusion in UV space: unwrap each frame with visibility and confidence, keep a running average.

The state per skin tile is the confidence-weighted colour sum and the weight sum per texel, so adding a frame costs
the same whatever came before, and a saved state continues exactly where it stopped.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..headmodel import HeadModel
from ..render import Camera, rasterize, rasterize_uv, sample_image, vertex_normals
from .albedo_level import FusionExposure
from .atlas import FUSED_SLOTS, SLOTS, slot_of_material

if TYPE_CHECKING:
    from .skin_mask import SkinMask

# Overlay geometry (thin, translucent) that must not hide the skin behind it in the depth test.
OVERLAY_SLOTS = {"lacrimal", "eyelashes", "occlusion", "eye_blend"}
DEPTH_TOLERANCE = 0.004  # metres: a texel this close behind the visible surface is the visible surface
MIN_COSINE = 0.35  # grazing views carry no usable colour
SILHOUETTE_MARGIN = 0.006  # of the image size
ROBUST_SCALE = 0.1  # RGB distance (0..1 per channel) from the running mean at which a sample's weight halves
ROBUST_MIN_WEIGHT = 0.5  # a texel's weight sum before its mean is trusted to judge new samples
MIN_WEIGHT = 1e-4  # a texel's weight from one frame below this is dropped rather than added


@dataclass
class TileGeometry:
    """Texels of one skin tile that the mesh covers: their flat index, triangle corners and barycentrics."""

    texel: torch.Tensor  # (N,) flat index into size*size
    corners: torch.Tensor  # (N, 3) vertex ids
    bary: torch.Tensor  # (N, 3)
    texel_size: torch.Tensor  # (N,) world size of a texel in metres at the neutral shape


@dataclass(frozen=True)
class TexelSamples:
    """One frame's samples of one tile (`TextureFusion.unwrap`): the texels it sees and what it adds to them."""

    tile: str
    texel: torch.Tensor  # (N,) flat index into size*size
    albedo: torch.Tensor  # (N, 3) de-lit colour (the colour itself when de-lighting is off)
    colour: torch.Tensor  # (N, 3) as photographed
    weight: torch.Tensor  # (N,) confidence: obliquity × footprint × sharpness × skin


def opaque_triangles(model: HeadModel) -> np.ndarray:
    """(T, 3) the model's triangles without the translucent overlays (`OVERLAY_SLOTS`): what hides what is behind."""
    materials = np.array([slot_of_material(m) for m in model.material_names])
    return model.triangles[~np.isin(materials[model.face_material[model.triangle_face]], list(OVERLAY_SLOTS))]


def tile_geometry(model: HeadModel, slot_name: str, size: int) -> TileGeometry:
    """Which triangle and where inside it each texel of a tile lies (cached on disk per model and size)."""
    from .. import paths

    cache = paths.home() / "cache" / f"uv-{model.checksum[:16]}-{slot_name}-{size}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as saved:
                return TileGeometry(*(torch.from_numpy(saved[k]) for k in ("texel", "corners", "bary", "texel_size")))
        except (OSError, ValueError, KeyError):
            cache.unlink(missing_ok=True)  # a damaged cache is rebuilt
    geometry = _rasterize_tile(model, slot_name, size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, texel=geometry.texel.numpy(), corners=geometry.corners.numpy(), bary=geometry.bary.numpy(),
             texel_size=geometry.texel_size.numpy())
    tmp.replace(cache)
    return geometry


def _rasterize_tile(model: HeadModel, slot_name: str, size: int) -> TileGeometry:
    slot = SLOTS[slot_name]
    materials = np.array([slot_of_material(m) for m in model.material_names])
    in_slot = np.nonzero(materials[model.face_material[model.triangle_face]] == slot_name)[0]
    uv_local = model.uv.astype(np.float32).copy()
    uv_local[:, 0] = (uv_local[:, 0] - slot.source_u0) / slot.source_width
    fragments = rasterize_uv(torch.from_numpy(uv_local), torch.from_numpy(model.triangle_uv[in_slot]), size)
    tri_id = fragments.tri_id.reshape(-1)
    texel = torch.nonzero(tri_id >= 0).squeeze(1)
    triangles = torch.from_numpy(model.triangles[in_slot])[tri_id[texel]]
    bary = fragments.bary.reshape(-1, 3)[texel].detach()
    # World size of one texel: sqrt(world area / texel area) of its triangle.
    verts = model.vertices[model.triangles[in_slot]]
    world_area = 0.5 * np.linalg.norm(np.cross(verts[:, 1] - verts[:, 0], verts[:, 2] - verts[:, 0]), axis=1)
    uvs = uv_local[model.triangle_uv[in_slot]] * size
    e1, e2 = uvs[:, 1] - uvs[:, 0], uvs[:, 2] - uvs[:, 0]
    texel_area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    per_triangle = np.sqrt(world_area / np.maximum(texel_area, 1e-12)).astype(np.float32)
    texel_size = torch.from_numpy(per_triangle)[tri_id[texel]]
    return TileGeometry(texel, triangles, bary, texel_size)


def frame_sharpness(image: np.ndarray, box: np.ndarray | None) -> float:
    """0..1 sharpness of the face region (variance of the Laplacian, squashed)."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if box is not None:
        x0, y0, x1, y1 = np.clip(np.asarray(box, int), 0, [grey.shape[1], grey.shape[0]] * 2)
        if x1 - x0 > 8 and y1 - y0 > 8:
            grey = grey[y0:y1, x0:x1]
    variance = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return variance / (variance + 50.0)


class TextureFusion:
    """Running confidence-weighted average of the skin tiles over frames."""

    def __init__(self, model: HeadModel, tile_size: int = 1024) -> None:
        self.model = model
        self.tile_size = tile_size
        self.geometry = {name: tile_geometry(model, name, tile_size) for name in FUSED_SLOTS}
        self.colour_sum = {name: torch.zeros(tile_size * tile_size, 3) for name in FUSED_SLOTS}
        self.photo_sum = {name: torch.zeros(tile_size * tile_size, 3) for name in FUSED_SLOTS}
        self.weight_sum = {name: torch.zeros(tile_size * tile_size) for name in FUSED_SLOTS}
        self._opaque_triangles = torch.from_numpy(opaque_triangles(model))
        self.frames = 0
        self.exposure = FusionExposure()  # how much skin the photos clipped (texture/albedo_level.py)
        self.robust = True  # outlier-rejecting fusion (see _agreement); off gives the plain weighted mean
        self.reference: TextureFusion | None = None  # judges new samples instead of the running state (see _agreement)

    def add_frame(self, image: np.ndarray, vertices: np.ndarray, camera: Camera, sharpness: float = 1.0,
                  skin: "SkinMask | None" = None, delight: bool = True) -> None:
        """Unwrap one frame and add it. ``vertices`` (V,3) model space; ``camera`` folds in the head pose (world →
        camera).

        ``skin`` (texture/skin_mask.py) weights every pixel by how surely it shows skin: hair, glasses, clothes and
        background never reach skin texels. With ``delight`` the frame's lighting is fitted and divided out before
        the colours enter the albedo sums (texture/delight.py); the as-photographed sums get the colours unchanged.
        """
        self.add_samples(self.unwrap(image, vertices, camera, sharpness, skin, delight))

    def unwrap(self, image: np.ndarray, vertices: np.ndarray, camera: Camera, sharpness: float = 1.0,
               skin: "SkinMask | None" = None, delight: bool = True) -> list["TexelSamples"]:
        """What one frame gives each tile (arguments as `add_frame`), not yet added: a robust batch adds the same
        samples to its reference and then to the fusion (`add_samples`) instead of unwrapping every frame twice."""
        from .delight import remove_shading

        height, width = image.shape[:2]
        verts = torch.from_numpy(np.asarray(vertices, np.float32))
        screen = camera.project(verts[None])[0]
        depth_map = rasterize(screen[None], self._opaque_triangles, height, width).depth[0]
        # Texels within a few pixels of the silhouette would pick up background through any misalignment: drop them.
        import cv2

        covered = (depth_map > 0).numpy().astype(np.uint8)
        margin = max(1, round(SILHOUETTE_MARGIN * max(height, width)))
        interior = torch.from_numpy(cv2.erode(covered, np.ones((2 * margin + 1,) * 2, np.uint8)) > 0)
        depth_map = torch.where(interior, depth_map, torch.full_like(depth_map, -float("inf")))
        cam_points = camera.world_to_camera(verts[None])[0]
        normals = vertex_normals(cam_points[None], torch.from_numpy(self.model.triangles))[0]
        picture = torch.from_numpy(np.array(image[..., :3], dtype=np.float32))[None] / 255.0
        focal = float(camera.K[0, 0]) if camera.K.ndim == 2 else float(camera.K[0, 0, 0])
        # One gather per tile for everything interpolated per texel: camera point, normal, pixel position.
        per_vertex = torch.cat([cam_points, normals, screen[:, :2]], 1)
        seen = []  # (tile, texels, colours, weights, normals) of the visible texels of every tile
        for name, geo in self.geometry.items():
            mixed = torch.einsum("nkc,nk->nc", per_vertex[geo.corners], geo.bary)
            point, pixel = mixed[:, 0:3], mixed[:, 6:8]
            normal = torch.nn.functional.normalize(mixed[:, 3:6], dim=1)
            z = point[:, 2]
            cosine = (normal * torch.nn.functional.normalize(-point, dim=1)).sum(1)
            col = pixel[:, 0].floor().long()
            row = pixel[:, 1].floor().long()
            inside = (z > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height) & (cosine > MIN_COSINE)
            visible = inside.clone()
            idx = inside.nonzero().squeeze(1)
            visible[idx] = z[idx] <= depth_map[row[idx], col[idx]] + DEPTH_TOLERANCE
            idx = visible.nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            footprint = geo.texel_size[idx] * focal / z[idx]  # image pixels per texel
            weight = ((cosine[idx] - MIN_COSINE) / (1 - MIN_COSINE)).square() * footprint.clamp(max=1.0) * sharpness
            if skin is not None:
                sure = torch.from_numpy(skin.sample(pixel[idx].numpy()))
                weight = weight * sure
                # Half-skin pixels are out: a thin dark glasses rim or hair strand keeps half its weight after the
                # mask is softened, and a texel that one frame alone sees takes that frame's colour whatever its
                # weight.
                kept = (weight > MIN_WEIGHT) & (sure >= 0.5)
                idx, weight = idx[kept], weight[kept]
            colour = sample_image(picture, pixel[idx][None, :, None, :], padding="border")[0, :, 0, :]
            seen.append((name, geo.texel[idx], colour, weight, normal[idx]))
        if seen and delight:
            # One lighting for the whole head in this frame, fitted over both tiles' skin texels.
            colours, normals_seen = torch.cat([s[2] for s in seen]), torch.cat([s[4] for s in seen])
            albedo, _ = remove_shading(normals_seen, colours, torch.cat([s[3] for s in seen]))
            albedos = albedo.split([len(s[2]) for s in seen])
        else:
            albedos = [s[2] for s in seen]
        return [TexelSamples(name, texel, albedo, colour, weight)
                for (name, texel, colour, weight, _), albedo in zip(seen, albedos)]

    def add_samples(self, samples: list["TexelSamples"]) -> None:
        """Add one frame's `unwrap` (robustly weighted unless `robust` is off); counts as one frame."""
        for s in samples:
            weight = s.weight * self._agreement(s.tile, s.texel, s.albedo) if self.robust else s.weight
            self.colour_sum[s.tile].index_add_(0, s.texel, s.albedo * weight[:, None])
            self.photo_sum[s.tile].index_add_(0, s.texel, s.colour * weight[:, None])
            self.weight_sum[s.tile].index_add_(0, s.texel, weight)
            self.exposure.add(s.colour.numpy(), s.weight.numpy())
        self.frames += 1

    def _agreement(self, name: str, texel: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
        """Robust fusion: how far a texel's new colour is from what the frames agree on, as a weight factor.

        A Cauchy weight on the distance to a mean: compression blocks, motion blur and a passing hand are outvoted
        instead of averaged in, while agreeing frames keep nearly their full weight. The mean is ``reference``'s when
        one is set — the plain mean over all frames of the batch (one reweighting step), so that no frame's outliers
        become the yardstick — else the running mean, once a texel holds ``ROBUST_MIN_WEIGHT``. The state stays the
        running sums (bounded, saved as before).
        """
        judge = self.reference if self.reference is not None else self
        held = judge.weight_sum[name][texel]
        mean = judge.colour_sum[name][texel] / held.clamp(min=1e-8)[:, None]
        factor = 1.0 / (1.0 + ((colour - mean).norm(dim=1) / ROBUST_SCALE).square())
        return torch.where(held >= ROBUST_MIN_WEIGHT, factor, torch.ones_like(factor))

    def snapshot(self) -> "TextureFusion":
        """A copy of the running state (geometry shared) that plain-averages what is added to it: the reference
        for a robust batch (see ``_agreement``)."""
        import copy

        twin = copy.copy(self)
        twin.colour_sum = {k: v.clone() for k, v in self.colour_sum.items()}
        twin.photo_sum = {k: v.clone() for k, v in self.photo_sum.items()}
        twin.weight_sum = {k: v.clone() for k, v in self.weight_sum.items()}
        twin.exposure = FusionExposure(self.exposure.clipped, self.exposure.total)
        twin.robust, twin.reference = False, None
        return twin

    def mean_colour(self, name: str, photographed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(size, size, 3) float albedo (or as-photographed colour) where seen (0 elsewhere) and (size, size) weight."""
        weight = self.weight_sum[name]
        sums = self.photo_sum if photographed else self.colour_sum
        colour = sums[name] / weight.clamp(min=1e-8)[:, None]
        size = self.tile_size
        return colour.reshape(size, size, 3).numpy(), weight.reshape(size, size).numpy()

    def coverage_mask(self, name: str) -> np.ndarray:
        """(size, size) bool: texels the mesh covers in this tile."""
        mask = np.zeros(self.tile_size * self.tile_size, bool)
        mask[self.geometry[name].texel.numpy()] = True
        return mask.reshape(self.tile_size, self.tile_size)

    # ---------------------------------------------------------------------------------------------- state
    def to_bytes(self) -> bytes:
        """The accumulators, exactly (float32, compressed): refinement continues from them."""
        arrays = {"tile_size": np.array(self.tile_size), "frames": np.array(self.frames),
                  "exposure": np.array([self.exposure.clipped, self.exposure.total])}
        for name in FUSED_SLOTS:
            arrays[f"{name}_colour_sum"] = self.colour_sum[name].numpy()
            arrays[f"{name}_weight_sum"] = self.weight_sum[name].numpy()
            arrays[f"{name}_photo_sum"] = self.photo_sum[name].numpy()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    def load_bytes(self, data: bytes) -> None:
        """Continue from a saved state (its tile size must match this fusion's)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            if int(saved["tile_size"]) != self.tile_size:
                raise ValueError(f"saved texture state is {int(saved['tile_size'])}² per tile, not {self.tile_size}²")
            self.frames = int(saved["frames"])
            if "exposure" in saved.files:  # states from before the albedo level kept no exposure figures
                self.exposure = FusionExposure(*(float(v) for v in saved["exposure"]))
            for name in FUSED_SLOTS:
                self.colour_sum[name] = torch.from_numpy(saved[f"{name}_colour_sum"].copy())
                self.weight_sum[name] = torch.from_numpy(saved[f"{name}_weight_sum"].copy())
                # States from before de-lighting kept only the as-photographed sums.
                photo = f"{name}_photo_sum" if f"{name}_photo_sum" in saved.files else f"{name}_colour_sum"
                self.photo_sum[name] = torch.from_numpy(saved[photo].copy())
