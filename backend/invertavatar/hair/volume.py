"""The hair volume: a voxel grid in the head's frame, attached to the fitted scalp and carved by every keyframe.

A voxel can hold hair when it lies in the **shell** the scalp can grow into (outside the head, within a hair's reach
of the cranium, or hanging below it behind the face), and no keyframe that sees it projects it off that keyframe's
hair mask through the keyframe's fitted camera: the visual hull. A keyframe sees a voxel unless it falls outside
the picture or behind the fitted head (the rasterized head's depth at that pixel). A keyframe **carves** every voxel
it sees off the hair; it **confirms** a voxel it sees on the hair only where it looks at the scalp under that voxel
from the front or the side: a silhouette says nothing about how deep the hair goes along the view, so a voxel
behind the crown in a frontal photo is neither carved nor confirmed. Like texture fusion it is incremental
(`HairVolume.add_view` keeps counters per voxel), and it says how much it has seen. With many keyframes the carving
is a vote: a voxel goes when more than a fifth of the views that saw it found no hair there, so one bad mask does
not cut the hair away.

Voxels no keyframe carved or confirmed (the back of the head in a frontal photo) are completed plausibly: from the
mirror image across the head's midplane when that was confirmed or carved, else by the hair's **fall**: at each
height as thick over the scalp as the confirmed hair at that height or above it, and never lower than the lowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.spatial import cKDTree

from ..render import Camera, rasterize
from .region import HairRegion

VOXEL = 0.006  # metres
SHELL_CRANIUM = 0.07  # how far hair may stand off the cranium (a big curly head of hair)
SHELL_FOREHEAD = 0.02  # a fringe lies close to the forehead
SHELL_DRAPED = 0.03  # hair combed over the temples and the ears, which it does not grow from
HANG_BELOW = 0.5  # metres below the top of the head the grid reaches (hair to the shoulder blades)
REACH = 0.16  # metres from the skin: the farthest a hanging voxel can be (0.2 from the neck's axis)
EXACT_WITHIN = 0.03  # metres from the skin within which the nearest skin vertex is searched exactly
SKIN_MATERIALS = ("M_Face", "M_BackHead")
# Within this of the scalp, a keyframe that looks along the surface (the temples in a frontal photo) cannot tell a
# thin layer of hair from skin at the silhouette's edge: it does not count as having seen the voxel.
GRAZING_REACH, GRAZING_COS = 0.015, 0.3
# A view confirms hair only over scalp that faces it at least this much (cosine): over scalp that faces away, the
# hair the silhouette shows could be anywhere along the ray.
CONFIRM_COS = -0.3
CARVE_SHARE = 0.2


@dataclass
class ScalpGeometry:
    """The fitted head's skin surface and which of its vertices are scalp, in the head's frame (metres)."""

    vertices: np.ndarray  # (V, 3) the whole mesh
    normals: np.ndarray  # (V, 3)
    skin: np.ndarray  # (K,) skin vertex indices
    scalp: np.ndarray  # (S,) vertices that can grow scalp hair
    forehead: np.ndarray  # (V,) bool, the forehead (a fringe's reach only)
    eye_level: float  # y of the eyes
    front: float  # z of the ears' front: hanging hair stays behind it
    chin_level: float  # y of the chin: a beard grows no lower than a little below it


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    corner = vertices[triangles]
    face_normal = np.cross(corner[:, 1] - corner[:, 0], corner[:, 2] - corner[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face_normal)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def hairline(points: np.ndarray, height: np.ndarray, eye_z: float, ear_z: float) -> np.ndarray:
    """Height above the eyes (metres) where an average scalp begins, per point: 5 cm up on the forehead and the
    temples' front, sloping down the sideburns to the ear's middle just in front of it, and 7 cm below the eyes at
    the nape behind the ears. The carving decides where hair actually is; this only says where it may root."""
    front, ear_front = eye_z - 0.03, ear_z + 0.015
    t = np.clip((points[:, 2] - ear_front) / (front - ear_front), 0.0, 1.0)
    line = np.where(points[:, 2] < ear_z - 0.03, -0.07, -0.01 + t * 0.06)
    forehead = (np.abs(points[:, 0]) < 0.04) & (points[:, 2] > ear_front)
    return np.where(forehead, np.maximum(line, 0.05), line)


def scalp_geometry(model, vertices: np.ndarray) -> ScalpGeometry:
    """Scalp and forehead of a fitted neutral head (``vertices`` (V, 3), the model's topology)."""
    normals = vertex_normals(vertices, model.triangles)
    skin_ids = [i for i, n in enumerate(model.material_names) if n in SKIN_MATERIALS]
    polygons = np.isin(model.face_material, skin_ids)
    skin = np.unique(model.faces[polygons][model.faces[polygons] >= 0])
    eyes = np.concatenate([model.regions[k] for k in ("eyeball_left", "eyeball_right") if k in model.regions])
    eye_level = float(vertices[eyes, 1].mean()) if len(eyes) else float(np.median(vertices[:, 1]))
    eye_z = float(vertices[eyes, 2].mean()) if len(eyes) else float(vertices[:, 2].max())
    p = vertices[skin]
    height = p[:, 1] - eye_level
    ear_z = eye_z - 0.1  # the ears' plane, a hand's breadth behind the eyes
    ear = (np.abs(p[:, 0]) > 0.062) & (height > -0.055) & (height < 0.03) & (np.abs(p[:, 2] - ear_z) < 0.035)
    cranium = height > hairline(p, height, eye_z, ear_z)
    forehead_skin = (height > 0.015) & ~cranium & (p[:, 2] > eye_z - 0.03)
    scalp = skin[(cranium | forehead_skin) & ~ear]
    forehead = np.zeros(len(vertices), bool)
    forehead[skin[forehead_skin]] = True
    chin_level = float(p[p[:, 2] > eye_z - 0.04, 1].min())
    return ScalpGeometry(vertices, normals, skin, scalp, forehead, eye_level, ear_z + 0.015, chin_level)


@dataclass
class ViewDepth:
    """One keyframe seen at its hair masks' resolution: the camera there, the fitted head's screen positions
    (V, 3) (pixel x, y, depth) and the rasterized head's depth (h, w) with where it covers the picture. Made once
    per keyframe; the carving and the beard's vote both read it."""

    camera: Camera
    screen: np.ndarray
    depth: np.ndarray
    covered: np.ndarray


def view_depth(region: HairRegion, camera: Camera, head_vertices: np.ndarray, triangles: np.ndarray) -> ViewDepth:
    """``camera`` maps the head frame to the pixels of the image the region was cut from; ``head_vertices`` are the
    keyframe's fitted head (its expression) in the head frame."""
    h, w = region.hair.shape
    k = camera.K.clone()
    k[..., :2, :] = k[..., :2, :] * region.scale
    small = Camera(k, camera.R, camera.t, w, h)
    with torch.no_grad():
        screen = small.project(torch.from_numpy(head_vertices).float()[None])
        fragments = rasterize(screen, torch.from_numpy(triangles.astype(np.int64)), h, w)
    return ViewDepth(small, screen[0].numpy(), fragments.depth[0].numpy(), fragments.mask[0].numpy())


class HairVolume:
    """Occupancy evidence on a voxel grid around one fitted head; views are added one at a time."""

    def __init__(self, geometry: ScalpGeometry, voxel: float = VOXEL) -> None:
        self.geometry = geometry
        self.voxel = voxel
        skin = geometry.vertices[geometry.skin]
        low = np.array([skin[:, 0].min() - SHELL_CRANIUM, skin[:, 1].max() - HANG_BELOW,
                        skin[:, 2].min() - SHELL_CRANIUM])
        high = np.array([skin[:, 0].max() + SHELL_CRANIUM, skin[:, 1].max() + SHELL_CRANIUM,
                         skin[:, 2].max() + 0.01])
        # Symmetric in x about the head's midplane (x = 0), so mirroring maps voxels onto voxels.
        half = max(abs(low[0]), abs(high[0]))
        low[0], high[0] = -half, half
        self.shape = tuple(int(np.ceil((high[k] - low[k]) / voxel)) for k in range(3))
        axes = [low[k] + (np.arange(self.shape[k]) + 0.5) * voxel for k in range(3)]
        self.origin = low
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        self.shell, self.distance, self.nearest = self._shell(grid)
        self.centres = grid[self.shell]  # only shell voxels are tracked
        self.carved = np.zeros(len(self.centres), np.int32)
        self.confirmed = np.zeros(len(self.centres), np.int32)
        self.on_hair = np.zeros(len(self.centres), np.int32)  # views that saw the voxel on their hair mask
        self.views = 0

    def _nearest_skin(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest skin vertex (index into the mesh) and its distance, for every grid point.

        Exact within `EXACT_WITHIN` of the skin, where the shell's thin layers and the outside test need it; farther
        out, a distance transform over the grid gives the skin voxel nearest each point, and the vertex in that
        voxel nearest its centre stands for it (a few mm off, on distances of centimetres), which is 4× cheaper.
        """
        from scipy import ndimage

        g = self.geometry
        skin = g.vertices[g.skin]
        cells = np.clip(np.floor((skin - self.origin) / self.voxel).astype(np.int64), 0, np.array(self.shape) - 1)
        flat = np.ravel_multi_index(tuple(cells.T), self.shape)
        centre = self.origin + (cells + 0.5) * self.voxel
        order = np.argsort(-np.linalg.norm(skin - centre, axis=1))  # the closest to its cell's centre written last
        representative = np.full(int(np.prod(self.shape)), -1, np.int64)
        representative[flat[order]] = g.skin[order]
        marked = (representative >= 0).reshape(self.shape)
        _, (i, j, k) = ndimage.distance_transform_edt(~marked, return_indices=True)
        nearest = representative[np.ravel_multi_index((i.ravel(), j.ravel(), k.ravel()), self.shape)]
        distance = np.linalg.norm(grid - g.vertices[nearest], axis=1)
        close = distance < EXACT_WITHIN
        exact_distance, index = cKDTree(skin).query(grid[close], k=1)
        nearest[close], distance[close] = g.skin[index], exact_distance
        return nearest, distance

    def _shell(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = self.geometry
        nearest, distance = self._nearest_skin(grid)
        far = distance > REACH
        offset = grid - g.vertices[nearest]
        outside = np.einsum("ij,ij->i", offset, g.normals[nearest]) > 0.002
        is_scalp = np.zeros(len(g.vertices), bool)
        is_scalp[g.scalp] = True
        reach = np.where(g.forehead[nearest], SHELL_FOREHEAD, SHELL_CRANIUM)
        near_scalp = is_scalp[nearest] & (distance <= reach)
        # Hanging hair: below the cranium, behind the ears' front, off the neck, within a shoulder's width.
        hanging = (grid[:, 1] < g.eye_level) & (grid[:, 2] < g.front + 0.03) & (distance > 0.004) \
            & (np.hypot(grid[:, 0], grid[:, 2] - g.front + 0.05) < 0.2)
        # Hair also lies over skin it does not grow from, beside the scalp: the temples and over the ears.
        draped = (distance <= SHELL_DRAPED) & (grid[:, 1] > g.eye_level - 0.03) \
            & (g.vertices[nearest, 2] < g.front + 0.05)
        shell = outside & (near_scalp | draped | hanging) & ~far
        return shell, distance[shell], nearest[shell]

    def add_view(self, region: HairRegion, view: ViewDepth) -> None:
        """Carve and confirm with one keyframe's hair mask, seen through ``view`` (`view_depth`)."""
        h, w = region.hair.shape
        camera, depth, covered = view.camera, view.depth, view.covered
        with torch.no_grad():
            voxels = camera.project(torch.from_numpy(self.centres).float()[None])[0].numpy()
        col, row = np.floor(voxels[:, 0]).astype(np.int64), np.floor(voxels[:, 1]).astype(np.int64)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (voxels[:, 2] > 0)
        c, r = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
        behind = inside & covered[r, c] & (voxels[:, 2] > depth[r, c] + self.voxel)
        rotation = camera.R.numpy().reshape(3, 3)
        ray = self.centres @ rotation.T + camera.t.numpy().reshape(3)
        ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-9)
        facing = -np.einsum("ij,ij->i", self.geometry.normals[self.nearest] @ rotation.T, ray)
        grazing = (self.distance < GRAZING_REACH) & (facing < GRAZING_COS)
        sees = inside & ~behind & ~grazing
        # A view judged bald has an empty hair mask: it carves what it sees, like any other.
        hair = cv2.dilate(region.hair.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        on_hair = hair[r, c]
        self.carved += sees & ~on_hair
        self.on_hair += sees & on_hair
        self.confirmed += sees & on_hair & (facing > CONFIRM_COS)
        self.views += 1

    def occupancy(self) -> np.ndarray:
        """(N,) bool over ``centres``: hair where a view confirmed it and none carved it, completed where no view
        did either."""
        known = (self.carved > 0) | (self.confirmed > 0)
        # Of many keyframes a few can be wrong (a mask that missed the hair, a frame judged bald): a voxel is
        # carved when more than `CARVE_SHARE` of the views that saw it found no hair there (one view: any).
        full = (self.confirmed > 0) & (self.carved <= CARVE_SHARE * (self.carved + self.on_hair))
        mirror = self._mirror_index()
        from_mirror = ~known & (mirror >= 0)
        from_mirror[from_mirror] &= known[mirror[from_mirror]]
        occupied = full.copy()
        occupied[from_mirror] = full[mirror[from_mirror]]
        rest = ~known & ~from_mirror
        if full.any() and rest.any():
            occupied[rest] = self._fall(full, rest)
        return occupied

    def seen_fraction(self) -> float:
        """Share of the shell's voxels that a keyframe carved or confirmed (the rest is completed)."""
        return float(((self.carved > 0) | (self.confirmed > 0)).mean()) if len(self.carved) else 0.0

    def _grid_index(self, points: np.ndarray) -> np.ndarray:
        ijk = np.floor((points - self.origin) / self.voxel).astype(np.int64)
        return np.ravel_multi_index(tuple(np.clip(ijk, 0, np.array(self.shape) - 1).T), self.shape)

    def _mirror_index(self) -> np.ndarray:
        lookup = np.full(int(np.prod(self.shape)), -1, np.int64)
        lookup[self._grid_index(self.centres)] = np.arange(len(self.centres))
        mirrored = self.centres * np.array([-1.0, 1.0, 1.0])
        return lookup[self._grid_index(mirrored)]

    def _fall(self, confirmed: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        """Unseen voxels at each height: hair where no farther off the head than the seen hair at that height (or
        above it), and no lower than the lowest seen hair."""
        y = self.centres[:, 1]
        slab = np.floor((y - self.origin[1]) / (2 * self.voxel)).astype(np.int64)
        reach = np.full(slab.max() + 2, -1.0)
        np.maximum.at(reach, slab[confirmed], self.distance[confirmed])
        lowest = y[confirmed].min()
        # Hair falls: down to the lowest seen hair, a slab is at least as thick as the slab above it.
        for s in range(len(reach) - 2, -1, -1):
            if s * 2 * self.voxel + self.origin[1] >= lowest - self.voxel:
                reach[s] = max(reach[s], reach[s + 1])
        keep = (self.distance[unseen] <= reach[slab[unseen]]) & (y[unseen] >= lowest)
        return keep
