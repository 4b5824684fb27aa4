"""The mesh condition: a frontal orthographic render of the head mesh's UV coordinates over the face window.

Output (B, P, P, 3): channels (u, v) in [-1, 1] usable as a ``grid_sample`` grid into the UV neural texture, and a
face alpha (1 on face skin and eyeballs, 0 elsewhere). Condition pixel (i, j) lies on plane-0 pixel
(row0 + (i + 0.5) / 2, col0 + (j + 0.5) / 2) of the face window, so the render is aligned with the tri-plane by
construction: plane 0 samples (x, y), x -> columns, y -> rows, over [-box_warp / 2, box_warp / 2].

Rasterisation goes through :mod:`invertavatar.render` (the one place that rasterizes). It takes screen-space
vertices with a depth; an orthographic view is expressed by a large constant depth offset, which makes the
perspective-correct barycentrics affine to within 1e-5 while keeping the front-most surface visible.

``ours`` (ICT head model, :class:`IctCondition`): the head is placed in the tri-plane box by a shift and a scale.
``official`` (FaceVerse v3.1, :class:`condition_faceverse.FaceverseCondition`) follows the reference pipeline.
"""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.neural.config import PriorConfig
from invertavatar.neural.prior.cameras import label_from_camera
from invertavatar.render import interpolate, rasterize

ORTHO_DEPTH = 1000.0  # constant camera distance that turns the perspective rasterizer orthographic
# ICT: materials that make up the visible head surface (mouth interior, lashes and eye layers are left out, so an
# open mouth shows as an enclosed hole that the generator fills), and those that carry the neural texture.
ICT_SURFACE = ("M_Face", "M_BackHead", "M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight")
ICT_TEXTURED = ("M_Face", "M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight")
ICT_PLANE_SCALE = 1.8  # tri-plane units per metre: an ICT face (brow to chin ~0.2 m) fills ~70 % of the window
# Where the mouth goes, as a fraction of the window height from its first row (the chin side, since plane rows
# follow +y). It keeps an open mouth at rows >= the mouth row, where holes count as mouth (reference §1.4).
ICT_MOUTH_AT = 0.5


def plane_to_condition_pixels(points: torch.Tensor, config: PriorConfig, mirror_x: bool = False) -> torch.Tensor:
    """Plane-space points (B, V, 3) -> condition screen vertices (pixel x, pixel y, orthographic depth).

    ``mirror_x`` flips the columns about the window centre, which is what the official render does (see
    ``condition_faceverse``).
    """
    res = config.plane_resolution
    r0, _, c0, _ = config.face_window
    col = (points[..., 0] / config.box_warp + 0.5) * res
    row = (points[..., 1] / config.box_warp + 0.5) * res
    zoom = res / (config.face_window[1] - r0)  # condition pixels per plane pixel (2 for both configurations)
    depth = ORTHO_DEPTH - points[..., 2]  # the frontal view looks down -Z: larger z is nearer
    x = (col - c0) * zoom
    return torch.stack([res - x if mirror_x else x, (row - r0) * zoom, depth], dim=-1)


def mesh_condition(
    points: torch.Tensor,
    triangles: np.ndarray | torch.Tensor,
    uv: torch.Tensor,
    uv_triangles: np.ndarray | torch.Tensor,
    config: PriorConfig,
    triangle_alpha: torch.Tensor | None = None,
    vertex_alpha: torch.Tensor | None = None,
    flip_v: bool = True,
    mirror_x: bool = False,
) -> torch.Tensor:
    """Render the condition for plane-space vertices ``points`` (B, V, 3).

    ``uv`` (U, 2) in [0, 1] indexed per triangle corner by ``uv_triangles`` (T, 3) (seams allowed). The face alpha
    is either per triangle (``triangle_alpha`` (T,), 1 for textured triangles) or a per-vertex mask interpolated
    over the surface (``vertex_alpha`` (V,), as the reference does; the generator binarises it at 0.5). UVs are
    multiplied by the alpha. ``flip_v`` maps v = 1 to the top texture row, the convention of our UV textures
    (Blender); the official FaceVerse condition uses v * 2 - 1 (``flip_v=False``).
    """
    if (triangle_alpha is None) == (vertex_alpha is None):
        raise ValueError("give exactly one of triangle_alpha and vertex_alpha")
    res = config.plane_resolution
    screen = plane_to_condition_pixels(points, config, mirror_x)
    fragments = rasterize(screen, triangles, res, res)
    uv_t = torch.as_tensor(uv, dtype=points.dtype, device=points.device)
    grid = uv_t * 2 - 1
    if flip_v:
        grid = torch.stack([grid[:, 0], -grid[:, 1]], dim=-1)
    uv_image = interpolate(grid, fragments, uv_triangles)
    if vertex_alpha is not None:
        mask = torch.as_tensor(vertex_alpha, dtype=points.dtype, device=points.device).reshape(-1, 1)
        alpha = interpolate(mask, fragments, triangles)[..., 0]
    else:
        tri_alpha = torch.as_tensor(triangle_alpha, dtype=points.dtype, device=points.device)
        alpha = torch.where(fragments.mask, tri_alpha[fragments.tri_id.clamp(min=0)],
                            torch.zeros_like(fragments.depth))
    return torch.cat([uv_image * alpha.unsqueeze(-1), alpha.unsqueeze(-1)], dim=-1)


class IctCondition:
    """Builds mesh conditions from ICT head-model vertices (metres, backend axes) for a prior configuration."""

    def __init__(self, head_model, config: PriorConfig) -> None:
        self.model, self.config = head_model, config
        names = list(head_model.material_names)
        surface = [names.index(n) for n in ICT_SURFACE if n in names]
        textured = [names.index(n) for n in ICT_TEXTURED if n in names]
        material = np.asarray(head_model.face_material)[head_model.triangle_face]
        keep = np.isin(material, surface)
        self.triangles = np.asarray(head_model.triangles)[keep]
        self.uv_triangles = np.asarray(head_model.triangle_uv)[keep]
        # Textured = eyeballs, and face skin whose corners all lie in the narrow face region (forehead to chin,
        # cheek to cheek): neck, ears and scalp come from the static planes, as FaceVerse's face mask does.
        in_face = np.zeros(head_model.n_vertices, dtype=bool)
        in_face[head_model.regions["narrow_face"]] = True
        skin = material == names.index("M_Face")
        eyes = np.isin(material, textured) & ~skin
        self.triangle_alpha = torch.from_numpy(
            (eyes | (skin & in_face[head_model.triangles].all(axis=1)))[keep].astype(np.float32))
        # UDIM tiles other than the first are not part of the face texture: keep UVs of tile 0 only.
        self.uv = torch.from_numpy(np.clip(np.asarray(head_model.uv, np.float32), 0.0, 1.0))
        face = np.asarray(head_model.vertices)[head_model.regions["narrow_face"]]
        lips = np.asarray(head_model.vertices)[np.asarray(head_model.landmarks68)[48:68]]
        box_centre = (face.min(0) + face.max(0)) / 2
        self.centre = np.array([box_centre[0], lips[:, 1].mean(), box_centre[2]])  # anchor: mouth height

    @property
    def plane_target(self) -> np.ndarray:
        """Plane-space point the anchor (face-box centre in x and z, mouth height in y) is mapped to."""
        c = self.config
        r0, r1, c0, c1 = c.face_window
        res = c.plane_resolution
        row = r0 + ICT_MOUTH_AT * (r1 - r0)
        return np.array([((c0 + c1) / 2 / res - 0.5) * c.box_warp, (row / res - 0.5) * c.box_warp, 0.0])

    def to_plane_space(self, vertices: torch.Tensor) -> torch.Tensor:
        """Backend metres -> prior frame (see ``cameras``): the anchor goes to ``plane_target``, scaled uniformly."""
        centre = torch.as_tensor(self.centre, dtype=vertices.dtype, device=vertices.device)
        target = torch.as_tensor(self.plane_target, dtype=vertices.dtype, device=vertices.device)
        return (vertices - centre) * ICT_PLANE_SCALE + target

    def camera_label(self, camera) -> torch.Tensor:
        """25-value label of an ``invertavatar.render.Camera`` placed in the backend frame around this head."""
        offset = self.plane_target - ICT_PLANE_SCALE * np.asarray(self.centre, np.float64)
        return label_from_camera(camera, np.eye(3), ICT_PLANE_SCALE, offset)

    def __call__(self, vertices: torch.Tensor) -> torch.Tensor:
        """Condition (B, P, P, 3) for ICT vertices (B, V, 3) in metres (canonical head frame, no head pose)."""
        return mesh_condition(self.to_plane_space(vertices), self.triangles, self.uv, self.uv_triangles, self.config,
                              triangle_alpha=self.triangle_alpha, flip_v=True)
