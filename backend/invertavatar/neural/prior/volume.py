"""Camera rays, tri-plane sampling, the density/feature decoder and two-pass volume rendering.

Conventions (reference §1.5, §1.7): the camera label is a flattened 4x4 cam-to-world matrix (OpenCV camera:
x right, y down, z forward) followed by a flattened 3x3 intrinsic matrix normalised by the image size.
Pixel (col u, row v) uses u, v in 0..res-1 without a half-pixel offset. Planes: 0 = (x, y), 1 = (x, z),
2 = (z, x), spanning [-box_warp/2, box_warp/2]. Near/far bounds follow the mean camera distance d of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.neural.ops.layers import FullyConnectedLayer


def camera_rays(camera: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and unit directions (B, res*res, 3) for a (B, 25) camera label, rows then columns."""
    if camera.ndim != 2 or camera.shape[1] < 25:
        raise ValueError(f"camera label must be (B, 25), got {tuple(camera.shape)}")
    cam2world = camera[:, :16].reshape(-1, 4, 4)
    intrinsics = camera[:, 16:25].reshape(-1, 3, 3).clone()
    intrinsics[:, :2] = intrinsics[:, :2] * resolution
    rows, cols = torch.meshgrid(
        torch.arange(resolution, dtype=camera.dtype, device=camera.device),
        torch.arange(resolution, dtype=camera.dtype, device=camera.device),
        indexing="ij",
    )
    pixels = torch.stack([cols.reshape(-1), rows.reshape(-1), torch.ones_like(cols).reshape(-1)], dim=-1)
    cam_dirs = torch.einsum("bij,nj->bni", torch.linalg.inv(intrinsics), pixels)
    dirs = F.normalize(torch.einsum("bij,bnj->bni", cam2world[:, :3, :3], cam_dirs), dim=-1)
    origins = cam2world[:, None, :3, 3].expand_as(dirs)
    return origins, dirs


def sample_planes(planes: torch.Tensor, points: torch.Tensor, box_warp: float) -> torch.Tensor:
    """Mean of the three plane features at ``points`` (B, N, 3); planes (B, 3, C, H, W) -> (B, N, C)."""
    coords = points * (2.0 / box_warp)
    x, y, z = coords.unbind(-1)
    pairs = [torch.stack(p, dim=-1) for p in ((x, y), (x, z), (z, x))]
    feats = []
    for index, grid in enumerate(pairs):
        sampled = F.grid_sample(planes[:, index], grid.unsqueeze(1), mode="bilinear", padding_mode="zeros",
                                align_corners=False)  # (B, C, 1, N)
        feats.append(sampled[:, :, 0].transpose(1, 2))
    return torch.stack(feats, dim=0).mean(dim=0)


class TriPlaneDecoder(nn.Module):
    """Tiny MLP: plane feature (C) -> raw density + C features in (-0.001, 1.001)."""

    def __init__(self, in_features: int, hidden: int = 64, lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            FullyConnectedLayer(in_features, hidden, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden, 1 + in_features, lr_multiplier=lr_multiplier),
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(features)
        rgb = torch.sigmoid(out[..., 1:]) * (1 + 2 * 0.001) - 0.001
        return rgb, out[..., :1]


def march(colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor):
    """Alpha-composite samples (B, R, S, C/1/1) at interval midpoints.

    Returns features mapped to [-1, 1] (B, R, C), depth (B, R, 1) clamped to the sampled range, weights (B, R, S-1, 1).
    """
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = F.softplus((densities[:, :, :-1] + densities[:, :, 1:]) / 2 - 1)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    alpha = 1 - torch.exp(-densities_mid * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], dim=-2), dim=-2)
    weights = alpha * transmittance[:, :, :-1]
    feature = (weights * colors_mid).sum(dim=-2)
    depth = (weights * depths_mid).sum(dim=-2) / weights.sum(dim=-2)
    depth = torch.nan_to_num(depth, float("inf")).clamp(depths.min(), depths.max())
    return feature * 2 - 1, depth, weights


def importance_depths(
    depths: torch.Tensor, weights: torch.Tensor, count: int, deterministic: bool, generator: torch.Generator | None
) -> torch.Tensor:
    """Inverse-CDF samples (B, R, count, 1) from smoothed marching weights (max-pool, avg-pool, + 0.01)."""
    b, r, s, _ = depths.shape
    z = depths.reshape(b * r, s)
    w = weights.reshape(b * r, 1, -1)
    w = F.avg_pool1d(F.max_pool1d(w, 2, 1, padding=1), 2, 1).reshape(b * r, -1) + 0.01
    bins = (z[:, :-1] + z[:, 1:]) / 2
    pdf_weights = w[:, 1:-1] + 1e-5
    pdf = pdf_weights / pdf_weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)
    if deterministic:
        u = torch.linspace(0, 1, count, dtype=z.dtype, device=z.device).expand(b * r, count).contiguous()
    else:
        u = torch.rand(b * r, count, generator=generator, dtype=z.dtype, device=z.device)
    upper = torch.searchsorted(cdf, u, right=True)
    below = (upper - 1).clamp(min=0)
    above = upper.clamp(max=pdf.shape[1])
    cdf_lo, cdf_hi = cdf.gather(1, below), cdf.gather(1, above)
    bin_lo, bin_hi = bins.gather(1, below), bins.gather(1, above)
    span = cdf_hi - cdf_lo
    span = torch.where(span < 1e-5, torch.ones_like(span), span)
    samples = bin_lo + (u - cdf_lo) / span * (bin_hi - bin_lo)
    return samples.reshape(b, r, count, 1)


class VolumeRenderer(nn.Module):
    """48 stratified + 48 importance samples per ray (configurable), decoded from the tri-planes."""

    def __init__(self, depth_resolution: int, depth_resolution_importance: int, box_warp: float,
                 near_offset: float, far_offset: float) -> None:
        super().__init__()
        self.depth_resolution, self.depth_resolution_importance = depth_resolution, depth_resolution_importance
        self.box_warp, self.near_offset, self.far_offset = box_warp, near_offset, far_offset

    def _decode(self, decoder: TriPlaneDecoder, planes, origins, dirs, depths):
        b, r, s, _ = depths.shape
        points = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(b, r * s, 3)
        rgb, sigma = decoder(sample_planes(planes, points, self.box_warp))
        return rgb.reshape(b, r, s, -1), sigma.reshape(b, r, s, 1)

    def forward(
        self,
        planes: torch.Tensor,
        decoder: TriPlaneDecoder,
        origins: torch.Tensor,
        dirs: torch.Tensor,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
        jitter: bool = True,
        trace: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return features (B, R, C) in [-1, 1] and depth (B, R, 1).

        Sampling modes: ``jitter`` moves every coarse depth by a uniform fraction of its bin (the reference always
        does); ``deterministic`` picks the importance depths at evenly spaced CDF levels (the reference's
        ``evaluation=True``) instead of at random. Official inference = (jitter, deterministic), training = (jitter,
        random), the fully deterministic mode of tests and parity = (no jitter, deterministic): coarse depths are
        then exactly the bin starts ``linspace(near, far, n)``. ``trace`` (a dict) receives the importance depths
        and the total compositing weight per ray.
        """
        b, r, _ = origins.shape
        # The reference takes the bounds from a Python float (mean origin norm of the whole batch).
        distance = float(origins.norm(dim=-1).mean())
        near, far = distance - self.near_offset, distance + self.far_offset
        n = self.depth_resolution
        depths = torch.linspace(near, far, n, dtype=origins.dtype, device=origins.device)
        depths = depths.reshape(1, 1, n, 1).repeat(b, r, 1, 1)
        if jitter:
            noise = torch.rand(depths.shape, generator=generator, dtype=depths.dtype, device=depths.device)
            depths = depths + noise * ((far - near) / (n - 1))
        colors, densities = self._decode(decoder, planes, origins, dirs, depths)
        if self.depth_resolution_importance > 0:
            _, _, weights = march(colors, densities, depths)
            fine = importance_depths(depths, weights.detach(), self.depth_resolution_importance, deterministic,
                                     generator).detach()
            if trace is not None:
                trace["depths_fine"] = fine
            fine_colors, fine_densities = self._decode(decoder, planes, origins, dirs, fine)
            depths = torch.cat([depths, fine], dim=-2)
            order = torch.argsort(depths, dim=-2)
            depths = depths.gather(-2, order)
            colors = torch.cat([colors, fine_colors], dim=-2).gather(-2, order.expand(-1, -1, -1, colors.shape[-1]))
            densities = torch.cat([densities, fine_densities], dim=-2).gather(-2, order)
        features, depth, weights = march(colors, densities, depths)
        if trace is not None:
            trace["weights_total"] = weights.sum(dim=-2)
        return features, depth
