"""The hair stage of a job: keyframes in, the bundle's ``hair/`` out (docs/hair.md, docs/bundle-format.md).

Each keyframe adds its hair masks to the volume's carving and its hair pixels to the colour samples, beside the
texture fusion of the same keyframe; `HairStage.finish` grows the guides and fits the colour once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..detect import Detection
from ..render import Camera
from .colour import hair_albedo, hair_parameters
from .region import HairRegion, hair_pixels, hair_region
from .strands import Guides, covered_vertices, grow_guides, thin_roots
from .volume import HairVolume, ViewDepth, scalp_geometry, view_depth

MAX_SAMPLES = 4000  # colour samples kept per keyframe and group
STATE_FILE = "hair.npz"  # the bundle's state/ entry that lets a refinement continue the carving
STATE_SAMPLES = 12000  # colour samples per group and kind carried in the state
BEARD_SPACING = 0.006
SCALP_PERCENTILES, BEARD_PERCENTILES = (15, 60), (5, 35)  # the lightness band whose median is the hair's colour
BEARD_VOTE = 0.5  # share of the keyframes that see a vertex which must find beard there
STRANDS_PER_CM2 = {"scalp": 120, "beard": 60}


@dataclass
class HairResult:
    """What the bundle stores: `hair/guides.npz` arrays, `hair/hair.json`, the manifest's `hair` section."""

    arrays: dict[str, np.ndarray] | None
    params: dict | None
    manifest: dict
    root_colour: np.ndarray | None = None  # sRGB 0..1 for the skin under the hair (texture bake's scalp tone)


@dataclass
class _Samples:
    root: list[np.ndarray] = field(default_factory=list)
    tip: list[np.ndarray] = field(default_factory=list)
    pixels: int = 0


class HairStage:
    """Collects keyframes; ``finish`` makes the hair. Works with MediaPipe's landmarks (needs the face oval)."""

    def __init__(self, model, segmenter=None) -> None:
        self.model = model
        self._segmenter = segmenter
        self._owns_segmenter = False
        self.volume: HairVolume | None = None
        self.samples = {"scalp": _Samples(), "beard": _Samples()}
        self.beard_seen = np.zeros(len(model.vertices), np.int32)
        self.beard_found = np.zeros(len(model.vertices), np.int32)
        self.beard_fullness: list[float] = []  # per keyframe with a beard: 0 stubble .. 1 a full beard
        self.views = 0
        self.bald_views = 0
        self.seconds = 0.0
        self._rng = np.random.default_rng(0)
        self.gain = np.ones(3)  # the keyframes' de-lighting gain (skin albedo over photographed), set before finish
        self._restored: dict | None = None  # a previous job's carving, joined when the volume is made

    @property
    def segmenter(self):
        if self._segmenter is None:
            from ..detect.person_mask import PersonSegmenter

            self._segmenter = PersonSegmenter()
            self._owns_segmenter = True
        return self._segmenter

    def close(self) -> None:
        """Release the segmenter this stage opened (one given to it is the caller's to close)."""
        if self._owns_segmenter and self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    def to_bytes(self) -> bytes:
        """The carving counters and colour samples, so that a refinement adds its keyframes to these."""
        import io

        arrays = {"views": np.array([self.views, self.bald_views]), "beard_seen": self.beard_seen,
                  "beard_found": self.beard_found, "beard_fullness": np.asarray(self.beard_fullness, np.float32)}
        if self.volume is not None:
            arrays.update(carved=self.volume.carved, confirmed=self.volume.confirmed, on_hair=self.volume.on_hair,
                          shape=np.asarray(self.volume.shape), origin=self.volume.origin)
        for name, samples in self.samples.items():
            for kind in ("root", "tip"):
                pixels = np.concatenate(getattr(samples, kind)) if getattr(samples, kind) else np.zeros((0, 3))
                arrays[f"{name}_{kind}"] = self._keep(pixels, STATE_SAMPLES).astype(np.float32)
            arrays[f"{name}_pixels"] = np.array(samples.pixels)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def load_bytes(self, data: bytes) -> None:
        """Continue from a previous job's state (`to_bytes`); its carving is kept when the new neutral head gives
        the same grid (the identity barely moves when photos are added), else the new keyframes carve afresh."""
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            state = {key: npz[key] for key in npz.files}
        self.views, self.bald_views = (int(v) for v in state["views"])
        if state["beard_seen"].shape == self.beard_seen.shape:
            self.beard_seen, self.beard_found = state["beard_seen"], state["beard_found"]
        self.beard_fullness = [float(c) for c in state["beard_fullness"]]
        for name, samples in self.samples.items():
            samples.root = [state[f"{name}_root"]] if len(state[f"{name}_root"]) else []
            samples.tip = [state[f"{name}_tip"]] if len(state[f"{name}_tip"]) else []
            samples.pixels = int(state[f"{name}_pixels"])
        self._restored = state if "carved" in state else None

    def _restore_volume(self) -> None:
        restored, self._restored = self._restored, None
        if restored is not None and tuple(restored["shape"]) == self.volume.shape \
                and len(restored["carved"]) == len(self.volume.carved):
            self.volume.carved += restored["carved"]
            self.volume.confirmed += restored["confirmed"]
            self.volume.on_hair += restored.get("on_hair", restored["confirmed"])

    def add(self, image: np.ndarray, detection: Detection, camera: Camera, vertices: np.ndarray,
            neutral: np.ndarray, skin) -> HairRegion | None:
        """One keyframe: ``camera`` and ``vertices`` (its fitted head, model space) as fused; ``neutral`` the
        avatar's neutral head (the frame the hair is built in). Returns the keyframe's hair region."""
        if detection.scheme != "mediapipe478" or len(detection.landmarks) < 468:
            return None
        started = time.perf_counter()
        from ..texture.fusion import opaque_triangles

        region = hair_region(image, detection, skin, self.segmenter.segment(image))
        if self.volume is None:
            self.volume = HairVolume(scalp_geometry(self.model, neutral))
            self._restore_volume()
        view = view_depth(region, camera, vertices, opaque_triangles(self.model))
        self.volume.add_view(region, view)
        self._sample_colour(image, region)
        self._vote_beard(region, view)
        self.views += 1
        self.bald_views += int(region.bald)
        self.seconds += time.perf_counter() - started
        return region

    def _keep(self, pixels: np.ndarray, limit: int = MAX_SAMPLES) -> np.ndarray:
        if len(pixels) > limit:
            pixels = pixels[self._rng.choice(len(pixels), limit, replace=False)]
        return pixels

    def _sample_colour(self, image: np.ndarray, region: HairRegion) -> None:
        if region.hair.any():
            rows = np.nonzero(region.hair.any(axis=1))[0]
            top, bottom = rows.min(), rows.max()
            span = max(bottom - top, 1)
            near_root = region.hair.copy()
            near_root[top + int(0.45 * span):] = False  # the crown and upper part: near the roots
            # Long hair's tips, on their own: the hair well below the chin line.
            below_chin = np.arange(region.hair.shape[0])[:, None] > region.chin_row[None, :] + 0.1 * span
            near_tip = region.hair & below_chin
            scalp = self.samples["scalp"]
            scalp.root.append(self._keep(hair_pixels(image, region, near_root)))
            if near_tip.sum() > 0.15 * region.hair.sum():
                scalp.tip.append(self._keep(hair_pixels(image, region, near_tip)))
            scalp.pixels += int(region.hair.sum())
        if region.beard.any():
            beard = self.samples["beard"]
            pixels = hair_pixels(image, region, region.beard)
            beard.root.append(self._keep(pixels))
            beard.pixels += int(region.beard.sum())
            if np.isfinite(region.skin_lightness):
                self.beard_fullness.append(beard_fullness(pixels, region.skin_lightness))

    def _vote_beard(self, region: HairRegion, view: ViewDepth) -> None:
        """Each visible face vertex votes whether its pixel is beard."""
        geometry = self.volume.geometry
        h, w = region.beard.shape
        depth = view.depth
        p = view.screen[geometry.skin]
        col, row = np.floor(p[:, 0]).astype(np.int64), np.floor(p[:, 1]).astype(np.int64)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        c, r = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
        # In front on the face, or on the beard (the beard's mask reaches under the jaw, past the face oval).
        visible = inside & (((p[:, 2] <= depth[r, c] + 0.004) & region.face[r, c]) | region.beard[r, c])
        y = geometry.vertices[geometry.skin, 1]
        lower = (y < geometry.eye_level - 0.03) & (y > geometry.chin_level - 0.015)  # not down the neck
        self.beard_seen[geometry.skin] += visible & lower
        self.beard_found[geometry.skin] += visible & lower & region.beard[r, c]

    def finish(self) -> HairResult:
        """Grow the guides and fit the colour; ``arrays`` is None when no hair was found (bald, clean-shaven)."""
        started = time.perf_counter()
        manifest = {"found": False, "method": "visual hull of the keyframes' hair masks (selfie segmentation, "
                    "landmarks and colour models), guides grown under gravity, Principled Hair melanin fit",
                    "keyframes": self.views, "bald_keyframes": self.bald_views, "seen_fraction": 0.0, "guides": 0,
                    "mask_pixels": {k: s.pixels for k, s in self.samples.items()}}
        if self.volume is None:
            return HairResult(None, None, manifest)
        groups: dict[str, Guides] = {}
        occupied = self.volume.occupancy()
        scalp = grow_guides(self.volume, occupied) if occupied.any() and self.samples["scalp"].root else None
        if scalp is not None:
            groups["scalp"] = scalp
        beard = self._beard_guides()
        if beard is not None:
            groups["beard"] = beard
        params = {"version": 1, "groups": {}}
        root_colour = None
        for name, guides in groups.items():
            samples = self.samples[name]
            # A beard, stubble above all, shows skin between its hairs: its fibres are its darker pixels.
            band = BEARD_PERCENTILES if name == "beard" else SCALP_PERCENTILES
            albedo = hair_albedo(np.concatenate(samples.root), self.gain, band)
            tip = hair_albedo(np.concatenate(samples.tip), self.gain, band) if samples.tip else None
            group = hair_parameters(albedo, tip)
            group["length_m"] = round(float(guides.lengths().max()), 4)
            group["strands_per_cm2"] = STRANDS_PER_CM2[name]
            params["groups"][name] = group
        if "scalp" in groups:
            from .colour import linear_to_srgb

            root_colour = linear_to_srgb(np.asarray(params["groups"]["scalp"]["root_colour"])).astype(np.float32)
        self.seconds += time.perf_counter() - started
        manifest.update(found=bool(groups), seen_fraction=round(self.volume.seen_fraction(), 4),
                        guides=int(sum(g.count for g in groups.values())), seconds=round(self.seconds, 3),
                        groups=sorted(groups))
        if not groups:
            return HairResult(None, None, manifest)
        return HairResult(self._arrays(groups, occupied), params, manifest, root_colour)

    def _beard_guides(self) -> Guides | None:
        seen = self.beard_seen
        voted = np.nonzero((seen > 0) & (self.beard_found >= BEARD_VOTE * np.maximum(seen, 1)))[0]
        if len(voted) < 20 or not self.samples["beard"].root:
            return None
        g = self.volume.geometry
        roots = voted[thin_roots(g.vertices[voted], BEARD_SPACING)]
        fullness = float(np.median(self.beard_fullness)) if self.beard_fullness else 0.3
        length = 0.003 + 0.025 * fullness  # stubble (a few mm) to a full beard (a few cm)
        down = np.array([0.0, -1.0, 0.0])
        normal = g.normals[roots]
        tangent = down - (normal @ down)[:, None] * normal
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-6)
        steps = np.linspace(0.0, 1.0, 5)[None, :, None]
        direction = 0.75 * tangent + 0.45 * normal
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        points = g.vertices[roots][:, None, :] + normal[:, None, :] * 0.001 + direction[:, None, :] * steps * length
        count = len(roots)
        offsets = np.arange(count + 1, dtype=np.int32) * 5
        radius = np.tile(np.linspace(6e-5, 3e-5, 5), count)
        return Guides(points.reshape(-1, 3).astype(np.float32), offsets, radius.astype(np.float32), roots)

    def _arrays(self, groups: dict[str, Guides], occupied: np.ndarray) -> dict[str, np.ndarray]:
        model = self.model
        face_of, uv_of = _vertex_polygons(model)
        points, radius, offsets, root_vertex, group = [], [], [0], [], []
        for index, name in enumerate(("scalp", "beard")):
            if name not in groups:
                continue
            guides = groups[name]
            points.append(guides.points)
            radius.append(guides.radius)
            offsets.extend((offsets[-1] + guides.offsets[1:]).tolist())
            root_vertex.append(guides.root_vertex)
            group.append(np.full(guides.count, index, np.uint8))
        roots = np.concatenate(root_vertex)
        scalp_vertices = covered_vertices(self.volume, occupied, self.volume.geometry.scalp).astype(np.int32) \
            if "scalp" in groups else np.zeros(0, np.int32)
        return {"points": np.concatenate(points).astype(np.float32),
                "curve_offsets": np.asarray(offsets, np.int32), "radius": np.concatenate(radius).astype(np.float32),
                "root_face": face_of[roots].astype(np.int32), "root_uv": uv_of[roots].astype(np.float32),
                "group": np.concatenate(group), "scalp_vertices": scalp_vertices}


def beard_fullness(pixels_srgb: np.ndarray, skin_lightness: float) -> float:
    """0 (stubble) .. 1 (a full beard) from how much darker than the skin the beard is (CIE L*): stubble lets the
    skin show through (10–15 darker), a full beard covers it (40 and more darker, less for fair hair on dark skin,
    which the length then underestimates)."""
    import cv2

    lab = cv2.cvtColor(pixels_srgb.reshape(-1, 1, 3).astype(np.float32), cv2.COLOR_RGB2LAB)
    contrast = skin_lightness - float(np.median(lab[:, 0, 0]))
    return float(np.clip((contrast - 12.0) / 30.0, 0.0, 1.0))


def _vertex_polygons(model) -> tuple[np.ndarray, np.ndarray]:
    """For every vertex, one polygon it belongs to and its texture coordinate in that polygon."""
    faces, face_uv = model.faces, model.face_uv
    face_of = np.zeros(len(model.vertices), np.int64)
    uv_of = np.zeros((len(model.vertices), 2), np.float32)
    for corner in range(4)[::-1]:  # later corners first, so the first corner that names a vertex wins
        valid = faces[:, corner] >= 0
        ids = np.nonzero(valid)[0][::-1]
        face_of[faces[ids, corner]] = ids
        uv_of[faces[ids, corner]] = model.uv[face_uv[ids, corner]]
    return face_of, uv_of
