"""The visibility step through nvdiffrast (CUDA), used only when the package is importable and tensors are on CUDA.

nvdiffrast is not a dependency: this module imports it lazily. Only its triangle ids are used; barycentrics are
recomputed in PyTorch by the caller like for every other backend.
NOT VERIFIED on this project's CPU-only machines (nvdiffrast cannot run there); the layout follows nvdiffrast's
documented conventions (clip-space input, output row 0 at clip y = -1, channel 3 = triangle id + 1).
"""

from __future__ import annotations

import torch

from ..errors import InvertAvatarError
from .raster_gl import clip_positions

_CONTEXTS: dict[str, object] = {}


def is_available(device: torch.device | None = None) -> bool:
    """True when nvdiffrast imports and ``device`` (default: any) is a CUDA device."""
    if not torch.cuda.is_available() or (device is not None and device.type != "cuda"):
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except Exception:
        return False
    return True


def rasterize_ids(screen: torch.Tensor, triangles: torch.Tensor, valid: torch.Tensor, height: int,
                  width: int) -> torch.Tensor:
    """Nearest triangle per pixel centre, (B,H,W) int64 with -1 where empty (same contract as raster_torch)."""
    if screen.device.type != "cuda":
        raise InvertAvatarError("rasterizer_unavailable", "nvdiffrast needs the mesh on a CUDA device.",
                                "Move the tensors to CUDA or choose INVERTAVATAR_RASTERIZER=torch.")
    import nvdiffrast.torch as dr

    key = str(screen.device)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = dr.RasterizeCudaContext(device=screen.device)
    ctx = _CONTEXTS[key]
    clip = clip_positions(screen.detach().float(), triangles, valid, height, width).contiguous()
    out = torch.full((screen.shape[0], height, width), -1, dtype=torch.int64, device=screen.device)
    # Valid triangles differ per batch item (culling, near plane), so each item is one draw of its kept triangles.
    for b in range(screen.shape[0]):
        kept = valid[b].nonzero().squeeze(1)
        if kept.numel() == 0:
            continue
        rast, _ = dr.rasterize(ctx, clip[b:b + 1], triangles[kept].int().contiguous(), resolution=[height, width])
        prim = rast[0, ..., 3].round().long().flip(0)  # nvdiffrast's row 0 is the bottom of the image
        hit = prim > 0
        out[b][hit] = kept[prim[hit] - 1]
    return out
