"""The visibility step in plain PyTorch: which triangle covers each pixel centre (runs on CPU and CUDA).

No Python loop over triangles or pixels: every triangle's pixel bounding box is expanded into candidate pixels with
tensor ops, candidates are edge-tested at the pixel centre, and a z-buffer keeps the nearest by a ``scatter_reduce``
``amin`` over a packed int64 key (depth bits in the high word, triangle index in the low word). Work is chunked so
that memory stays bounded whatever the image size.

Edges are evaluated from their lower-numbered vertex in both triangles that share them, so the two edge functions are
exact negatives of each other and a pixel centre on a shared edge is never missed (watertight).
"""

from __future__ import annotations

import torch

#: Candidate pixels processed per chunk; about 100 bytes each, so ~100 MB at the default.
DEFAULT_CHUNK = 1 << 20

_EMPTY = torch.iinfo(torch.int64).max


def _edge_setup(corners: torch.Tensor, vids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per triangle and edge: (x_lo, y_lo, dx, dy) oriented so that E(p) = dx*(py-y_lo) - dy*(px-x_lo) >= 0 inside.

    ``corners`` (N,3,3) screen x, y, z; ``vids`` (N,3) vertex ids. Edge k is the one opposite vertex k. Returns the
    (N,3,4) edge table and the (N,) signed doubled area.
    """
    x, y = corners[..., 0], corners[..., 1]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    edges = []
    for i, j in ((1, 2), (2, 0), (0, 1)):  # opposite vertex 0, 1, 2
        swap = vids[:, i] > vids[:, j]
        lo = torch.where(swap, torch.full_like(swap, j, dtype=torch.long), torch.full_like(swap, i, dtype=torch.long))
        hi = i + j - lo
        xl = x.gather(1, lo[:, None])[:, 0]
        yl = y.gather(1, lo[:, None])[:, 0]
        dx = x.gather(1, hi[:, None])[:, 0] - xl
        dy = y.gather(1, hi[:, None])[:, 0] - yl
        # E_(i->j)(p) = (xj-xi)(py-yi) - (yj-yi)(px-xi) has the sign of `area` inside; flipping (dx, dy) is exact.
        sign = torch.where(swap, -1.0, 1.0).to(x.dtype) * torch.sign(area)
        edges.append(torch.stack([xl, yl, dx * sign, dy * sign], -1))
    return torch.stack(edges, 1), area


def rasterize_ids(screen: torch.Tensor, triangles: torch.Tensor, valid: torch.Tensor, height: int, width: int,
                  chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Nearest triangle per pixel, (B,H,W) int64 with -1 where empty.

    ``screen`` (B,V,3) pixel x, pixel y, depth; ``triangles`` (T,3) int64; ``valid`` (B,T) bool says which
    triangles may be drawn (in front of the camera, facing it when culling, not degenerate).
    """
    B, _, _ = screen.shape
    T = triangles.shape[0]
    device = screen.device
    screen = screen.detach().float()
    hw = height * width
    zbuf = torch.full((B * hw + 1,), _EMPTY, dtype=torch.int64, device=device)  # + 1 spare slot, see below

    ids = valid.reshape(-1).nonzero().squeeze(1)
    if ids.numel() == 0:
        return torch.full((B, height, width), -1, dtype=torch.int64, device=device)
    batch = ids // T
    tri = ids % T
    vids = triangles[tri]
    corners = screen[batch[:, None], vids]  # (N,3,3)

    # Pixel (col, row) is sampled at its centre (col + 0.5, row + 0.5); inclusive ranges clipped to the image.
    lo = corners[..., :2].amin(1) - 0.5
    hi = corners[..., :2].amax(1) - 0.5
    limit = torch.tensor([width, height], device=device, dtype=lo.dtype)
    first = torch.ceil(lo).clamp(min=0).minimum(limit).long()
    last = torch.floor(hi).clamp(max=limit - 1).maximum(torch.full_like(hi, -1)).long()
    span = (last - first + 1).clamp(min=0)
    count = span[:, 0] * span[:, 1]
    edges, area = _edge_setup(corners, vids)
    # A triangle that is degenerate in float32 covers nothing; dropping it also keeps 1/area finite below.
    keep = ((count > 0) & (area != 0)).nonzero().squeeze(1)
    if keep.numel() == 0:
        return torch.full((B, height, width), -1, dtype=torch.int64, device=device)
    batch, tri, corners, edges, area = batch[keep], tri[keep], corners[keep], edges[keep], area[keep]
    first, span, count = first[keep], span[keep], count[keep]
    # 1/z interpolates linearly in screen space: zinv(p) = sum_k E_k(p) / (|area| z_k).
    inv_z = 1.0 / (corners[..., 2] * area.abs()[:, None])
    base = batch * hw

    # Bucket triangles by their bounding box rounded up to powers of two, so that each bucket expands into a dense
    # (N, gy, gx) grid by broadcasting (cheap) rather than by per-pixel gathers (slow on CPU).
    grid = torch.exp2(torch.ceil(torch.log2(span.float()))).long()
    grid = torch.where(grid < span, grid * 2, grid)
    bucket = grid[:, 0] * (1 << 20) + grid[:, 1]
    order = torch.argsort(bucket)
    keys, sizes = torch.unique_consecutive(bucket[order], return_counts=True)
    start = 0
    for key, size in zip(keys.tolist(), sizes.tolist()):
        gx, gy = key >> 20, key & ((1 << 20) - 1)
        members = order[start:start + size]
        start += size
        step = max(1, chunk // (gx * gy))
        for lo_i in range(0, size, step):
            sel = members[lo_i:lo_i + step]
            _rasterize_grid(edges[sel], inv_z[sel], first[sel], span[sel], base[sel], tri[sel], gx, gy, width, zbuf)

    zbuf = zbuf[:-1]
    tri_id = torch.where(zbuf == _EMPTY, torch.full_like(zbuf, -1), zbuf & 0xFFFFFFFF)
    return tri_id.view(B, height, width)


def _rasterize_grid(edges: torch.Tensor, inv_z: torch.Tensor, first: torch.Tensor, span: torch.Tensor,
                    base: torch.Tensor, tri: torch.Tensor, gx: int, gy: int, width: int, zbuf: torch.Tensor) -> None:
    """Edge-test a (N, gy, gx) grid of candidate pixels per triangle and fold the hits into the z-buffer."""
    device = edges.device
    ox = torch.arange(gx, device=device)
    oy = torch.arange(gy, device=device)
    px = first[:, 0, None] + ox  # (N, gx)
    py = first[:, 1, None] + oy  # (N, gy)
    fx = (px.float() + 0.5)[:, None, :]
    fy = (py.float() + 0.5)[:, :, None]
    e = []
    for k in range(3):
        xl, yl, dx, dy = (edges[:, k, c, None, None] for c in range(4))
        e.append(dx * (fy - yl) - dy * (fx - xl))  # (N, gy, gx)
    in_box = (oy[None, :, None] < span[:, 1, None, None]) & (ox[None, None, :] < span[:, 0, None, None])
    inside = (e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0) & in_box
    zinv = e[0] * inv_z[:, 0, None, None] + e[1] * inv_z[:, 1, None, None] + e[2] * inv_z[:, 2, None, None]
    # Positive float32 bit patterns order like their values, so the depth's bits make a sortable key.
    depth = torch.reciprocal(zinv.clamp_(min=1e-30))
    key = (depth.view(torch.int32).long() << 32) | tri[:, None, None]
    pixel = (base[:, None, None] + py[:, :, None] * width) + px[:, None, :]
    # Outside candidates go to a spare slot past the end instead of being compacted (boolean indexing is slow).
    pixel = torch.where(inside, pixel, zbuf.numel() - 1)
    zbuf.scatter_reduce_(0, pixel.reshape(-1), key.reshape(-1), reduce="amin", include_self=True)
