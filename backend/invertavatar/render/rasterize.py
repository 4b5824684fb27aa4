"""Rasterization behind one interface: a backend picks the visible triangle per pixel, PyTorch does the rest.

The discrete step (which triangle wins each pixel centre) has no useful gradient, so it runs without autograd in the
fastest available backend (``torch``, ``opengl`` or ``nvdiffrast``; see ``docs/benchmarks/rasterizer.md``). The
barycentrics and depth are then recomputed in plain PyTorch from the winning triangle ids and the screen vertices,
perspective-correct, so gradients flow to the vertex positions.

Choose the backend with the ``backend`` argument or the ``INVERTAVATAR_RASTERIZER`` environment variable
(``auto`` — the default —, ``torch``, ``opengl``, ``nvdiffrast``). A backend that cannot run here falls back to
``torch`` with a logged warning.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvertAvatarError
from . import raster_gl, raster_nvdiffrast, raster_torch

log = logging.getLogger(__name__)

RASTERIZER_ENV = "INVERTAVATAR_RASTERIZER"
BACKENDS = ("torch", "opengl", "nvdiffrast")
#: The CPU default, chosen by backend/benchmarks/bench_rasterizer.py (docs/benchmarks/rasterizer.md).
CPU_DEFAULT = "opengl"
#: Pixels per call (batch × height × width); the z-buffer alone takes 8 bytes each.
MAX_PIXELS = 1 << 26
_warned: set[str] = set()


@dataclass
class Fragments:
    """Per-pixel rasterization result for a batch of B images of H×W.

    ``tri_id`` (B,H,W) int64, index into the triangle list, -1 where no triangle covers the pixel centre;
    ``bary`` (B,H,W,3) perspective-correct barycentric weights of the triangle's three corners (0 where empty),
    differentiable w.r.t. the screen vertices; ``depth`` (B,H,W) camera-space depth (0 where empty).
    """

    tri_id: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B,H,W) bool, True where a triangle covers the pixel."""
        return self.tri_id >= 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, H, W)."""
        return tuple(self.tri_id.shape)  # type: ignore[return-value]


def _bad(message: str, hint: str) -> InvertAvatarError:
    return InvertAvatarError("invalid_render_input", message, hint)


def as_triangles(triangles: torch.Tensor | np.ndarray, n_vertices: int, device: torch.device) -> torch.Tensor:
    """Triangles as an int64 (T,3) tensor on ``device``, checked against the vertex count."""
    tris = torch.as_tensor(np.asarray(triangles) if not torch.is_tensor(triangles) else triangles)
    if tris.ndim != 2 or tris.shape[1] != 3 or tris.dtype.is_floating_point or tris.dtype == torch.bool:
        raise _bad(f"triangles must be an integer array of shape (T, 3), got {tuple(tris.shape)} {tris.dtype}.",
                   "Split quads into triangles first (headmodel.base.split_polygons).")
    tris = tris.to(device=device, dtype=torch.int64)
    if tris.numel() and (int(tris.min()) < 0 or int(tris.max()) >= n_vertices):
        raise _bad(f"triangle indices must lie in [0, {n_vertices}), got [{int(tris.min())}, {int(tris.max())}].",
                   "Check that the triangles belong to this vertex array.")
    return tris


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """The backends that can run on ``device`` on this machine."""
    device = torch.device(device)
    names = ["torch"]
    if device.type == "cpu" and raster_gl.is_available():
        names.append("opengl")
    if raster_nvdiffrast.is_available(device):
        names.append("nvdiffrast")
    return names


def choose_backend(name: str | None, device: torch.device) -> str:
    """Resolve a backend name (argument, else environment, else ``auto``) to one that runs on ``device``."""
    requested = (name or os.environ.get(RASTERIZER_ENV) or "auto").strip().lower()
    if requested not in BACKENDS + ("auto",):
        raise InvertAvatarError("invalid_setting", f"Unknown rasterizer '{requested}'.",
                                f"Use one of: auto, {', '.join(BACKENDS)} (argument or {RASTERIZER_ENV}).")
    if requested == "auto":
        if device.type == "cuda":
            return "nvdiffrast" if raster_nvdiffrast.is_available(device) else "torch"
        requested = CPU_DEFAULT
    if requested == "torch":
        return "torch"
    if requested == "opengl" and device.type == "cpu" and raster_gl.is_available():
        return "opengl"
    if requested == "opengl" and device.type != "cpu":
        # Reading ids back from OpenGL would cost a device round trip; the torch backend runs on the GPU directly.
        return "nvdiffrast" if raster_nvdiffrast.is_available(device) else "torch"
    if requested == "nvdiffrast" and raster_nvdiffrast.is_available(device):
        return "nvdiffrast"
    if requested not in _warned:
        _warned.add(requested)
        log.warning("Rasterizer '%s' is not available on %s here; using the PyTorch rasterizer.", requested, device)
    return "torch"


def triangle_mask(screen: torch.Tensor, triangles: torch.Tensor, cull_backfaces: bool = False) -> torch.Tensor:
    """(B,T) bool: triangles that may be drawn — finite, all corners in front of the camera (depth > 0), non-degenerate,
    and, with ``cull_backfaces``, facing the camera (counter-clockwise as seen by it, i.e. negative signed area in
    y-down pixel coordinates)."""
    corners = screen.detach()[:, triangles]  # (B,T,3,3)
    x, y, z = corners.unbind(-1)
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    ok = torch.isfinite(corners).all(-1).all(-1) & (z > 0).all(-1) & (area != 0)
    if cull_backfaces:
        ok &= area < 0
    return ok


def barycentrics(screen: torch.Tensor, triangles: torch.Tensor, tri_id: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                 torch.Tensor]:
    """Perspective-correct barycentrics (B,H,W,3) and depth (B,H,W) at pixel centres, differentiable w.r.t. ``screen``.

    Screen-space weights come from the three sub-triangle areas at the pixel centre; dividing each by its corner's
    depth and renormalising makes them perspective-correct, and the normaliser is 1/depth.
    """
    B, H, W = tri_id.shape
    V = screen.shape[1]
    flat = tri_id.reshape(-1)
    sel = (flat >= 0).nonzero().squeeze(1)
    batch = sel // (H * W)
    pixel = sel % (H * W)
    corner_ids = triangles[flat[sel]] + (batch * V)[:, None]  # (N,3) rows of the flattened batch
    corners = screen.reshape(-1, 3).index_select(0, corner_ids.reshape(-1)).view(-1, 3, 3)  # (N,3,3)
    # Corner positions relative to the pixel centre.
    x = corners[..., 0] - ((pixel % W).to(screen.dtype) + 0.5)[:, None]
    y = corners[..., 1] - ((pixel // W).to(screen.dtype) + 0.5)[:, None]
    # Weight of corner k = doubled area of (pixel, corner k+1, corner k+2) / doubled area of the triangle.
    sub = torch.stack([x[:, 1] * y[:, 2] - y[:, 1] * x[:, 2],
                       x[:, 2] * y[:, 0] - y[:, 2] * x[:, 0],
                       x[:, 0] * y[:, 1] - y[:, 0] * x[:, 1]], 1)
    area = sub.sum(1, keepdim=True)
    area = torch.where(area.abs() < 1e-20, torch.full_like(area, 1e-20), area)
    persp = sub / (area * corners[..., 2])
    inv_depth = persp.sum(1, keepdim=True)
    bary = persp / inv_depth
    # One scatter for both outputs; empty pixels keep zeros.
    packed = torch.zeros(B * H * W, 4, dtype=screen.dtype, device=screen.device)
    packed = packed.index_put((sel,), torch.cat([bary, 1.0 / inv_depth], 1))
    bary_full, depth_full = packed[:, :3], packed[:, 3]
    return bary_full.reshape(B, H, W, 3), depth_full.reshape(B, H, W)


def rasterize(screen_vertices: torch.Tensor, triangles: torch.Tensor | np.ndarray, height: int, width: int, *,
              cull_backfaces: bool = False, backend: str | None = None) -> Fragments:
    """Rasterize a batch of meshes given in screen space.

    ``screen_vertices`` (B,V,3): pixel x, pixel y (pixel centres at +0.5, row 0 at the top) and camera depth, as
    returned by ``Camera.project``. ``triangles`` (T,3) vertex indices shared by the batch. Triangles with any corner
    at depth <= 0 are skipped (not clipped). Returns ``Fragments``; only ``bary`` and ``depth`` carry gradients.
    """
    if not torch.is_tensor(screen_vertices) or screen_vertices.ndim != 3 or screen_vertices.shape[-1] != 3:
        shape = tuple(screen_vertices.shape) if torch.is_tensor(screen_vertices) else type(screen_vertices).__name__
        raise _bad(f"screen_vertices must have shape (B, V, 3), got {shape}.", "Pass Camera.project(points) output.")
    if not screen_vertices.dtype.is_floating_point:
        raise _bad("screen_vertices must be floating point.", "Convert with .float().")
    if int(height) <= 0 or int(width) <= 0:
        raise _bad(f"Image size must be positive, got {width}×{height}.", "Give the size in pixels.")
    height, width = int(height), int(width)
    if screen_vertices.shape[0] * height * width > MAX_PIXELS:
        raise InvertAvatarError(
            "image_too_large", f"Rasterizing {screen_vertices.shape[0]}×{width}×{height} pixels at once is too much "
            f"(limit {MAX_PIXELS} pixels per call).", "Render smaller images or fewer at a time.")
    device = screen_vertices.device
    tris = as_triangles(triangles, screen_vertices.shape[1], device)
    name = choose_backend(backend, device)
    with torch.no_grad():
        valid = triangle_mask(screen_vertices, tris, cull_backfaces)
        if name == "opengl":
            tri_id = raster_gl.rasterize_ids(screen_vertices, tris, valid, height, width)
        elif name == "nvdiffrast":
            tri_id = raster_nvdiffrast.rasterize_ids(screen_vertices, tris, valid, height, width)
        else:
            tri_id = raster_torch.rasterize_ids(screen_vertices, tris, valid, height, width)
    bary, depth = barycentrics(screen_vertices, tris, tri_id)
    return Fragments(tri_id=tri_id, bary=bary, depth=depth)


def rasterize_uv(uv: torch.Tensor | np.ndarray, uv_triangles: torch.Tensor | np.ndarray, size: int, *,
                 backend: str | None = None) -> Fragments:
    """Rasterize the UV layout into a ``size``×``size`` texture-space image.

    Texel (row, col) has its centre at u = (col + 0.5) / size, v = 1 - (row + 0.5) / size, so row 0 is v = 1 and the
    image matches Blender/OpenGL UVs (origin bottom-left) when saved as a picture. UVs outside [0,1]² fall outside
    the image (subtract a UDIM tile's offset first to render that tile). Interpolating per-vertex attributes with the
    mesh's own ``triangles`` gives position or normal maps, since triangle t is the same face in both lists.
    """
    uv_t = torch.as_tensor(uv) if not torch.is_tensor(uv) else uv
    if uv_t.ndim != 2 or uv_t.shape[1] != 2 or not uv_t.dtype.is_floating_point:
        raise _bad(f"uv must be a float array of shape (U, 2), got {tuple(uv_t.shape)}.", "Pass the mesh's UVs.")
    if int(size) <= 0:
        raise _bad(f"UV image size must be positive, got {size}.", "Use e.g. 1024.")
    size = int(size)
    screen = torch.stack([uv_t[:, 0] * size, (1.0 - uv_t[:, 1]) * size, torch.ones_like(uv_t[:, 0])], -1)
    return rasterize(screen[None], uv_triangles, size, size, backend=backend)
