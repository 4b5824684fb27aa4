"""Shared fixtures for the render tests: the backends that run here and a brute-force numpy reference rasterizer."""

from __future__ import annotations

import numpy as np
import pytest

from invertavatar.render import available_backends


def _reference_rasterize(screen: np.ndarray, triangles: np.ndarray, height: int, width: int,
                         cull_backfaces: bool = False):
    """Per pixel centre: point-in-triangle test and perspective-correct depth for every triangle, nearest wins.

    ``screen`` (V,3) float64 pixel x, y, depth. Returns tri_id (H,W) (-1 empty), depth (H,W), bary (H,W,3), and
    ``margin`` (H,W): the smallest distance in pixels from the centre to an edge of any triangle covering it or
    nearly covering it, and the depth gap to the runner-up — where either is tiny, backends may legitimately differ.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    px, py = xs + 0.5, ys + 0.5
    tri_id = np.full((height, width), -1)
    depth = np.full((height, width), np.inf)
    second = np.full((height, width), np.inf)
    bary = np.zeros((height, width, 3))
    edge_gap = np.full((height, width), np.inf)
    for t, (i, j, k) in enumerate(triangles):
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = screen[i], screen[j], screen[k]
        if min(z0, z1, z2) <= 0:
            continue
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if area == 0 or (cull_backfaces and area > 0):
            continue
        w0 = ((x1 - px) * (y2 - py) - (y1 - py) * (x2 - px)) / area
        w1 = ((x2 - px) * (y0 - py) - (y2 - py) * (x0 - px)) / area
        w2 = 1.0 - w0 - w1
        lengths = [np.hypot(x2 - x1, y2 - y1), np.hypot(x0 - x2, y0 - y2), np.hypot(x1 - x0, y1 - y0)]
        # Signed distances (px) to the three edges, positive inside; only pixels near the triangle count.
        signed = [w * abs(area) / L for w, L in zip((w0, w1, w2), lengths)]
        near = np.minimum.reduce(signed) > -0.05
        dist = np.minimum.reduce([np.abs(d) for d in signed])
        edge_gap = np.where(near, np.minimum(edge_gap, dist), edge_gap)
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        inv = w0 / z0 + w1 / z1 + w2 / z2
        z = np.where(inside, 1.0 / np.where(inv > 0, inv, 1.0), np.inf)
        closer = z < depth
        second = np.where(closer, depth, np.minimum(second, z))
        depth = np.where(closer, z, depth)
        tri_id = np.where(closer, t, tri_id)
        persp = np.stack([w0 / z0, w1 / z1, w2 / z2], -1) / inv[..., None]
        bary = np.where(closer[..., None], persp, bary)
    with np.errstate(invalid="ignore"):
        depth_gap = np.where(np.isfinite(second), (second - depth) / np.where(np.isfinite(depth), depth, 1.0), np.inf)
    margin = np.minimum(edge_gap, depth_gap)
    depth = np.where(tri_id >= 0, depth, 0.0)
    return tri_id, depth, bary, margin


@pytest.fixture(scope="session")
def reference_rasterize():
    """The numpy reference rasterizer (see ``_reference_rasterize``)."""
    return _reference_rasterize


@pytest.fixture(scope="session")
def cpu_backends() -> list[str]:
    return available_backends("cpu")


@pytest.fixture(params=["torch", "opengl"])
def backend(request, cpu_backends) -> str:
    """Each rasterizer backend in turn; OpenGL skips (with the reason) where no EGL context can be created."""
    if request.param not in cpu_backends:
        pytest.skip(f"{request.param} rasterizer not available on this machine (no EGL context)")
    return request.param


def random_triangles(rng: np.random.Generator, count: int, height: int, width: int):
    """``count`` separate random triangles overlapping inside an H×W image, depths 1..3. Returns (V,3), (T,3)."""
    centres = rng.uniform([0, 0], [width, height], size=(count, 1, 2))
    offsets = rng.normal(scale=0.35 * min(height, width), size=(count, 3, 2))
    xy = (centres + offsets).reshape(-1, 2)
    z = rng.uniform(1.0, 3.0, size=(count * 3, 1))
    return np.concatenate([xy, z], 1), np.arange(count * 3).reshape(count, 3)


@pytest.fixture(scope="session")
def make_random_triangles():
    return random_triangles
