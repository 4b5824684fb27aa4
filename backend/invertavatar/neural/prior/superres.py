"""4x super-resolution of the neural render (EG3D's "8XDC" module): two StyleGAN2 blocks with RGB skip."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.neural.prior.stylegan2 import SynthesisBlock


class SuperResolution(nn.Module):
    """feature image (C @ r) + raw RGB (3 @ r) -> RGB @ 4r, modulated by the last w only."""

    def __init__(
        self,
        in_channels: int,
        w_dim: int,
        input_resolution: int,
        channels: tuple[int, int] = (256, 128),
        conv_clamp: float | None = 256.0,
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.block0 = SynthesisBlock(in_channels, channels[0], w_dim, input_resolution * 2, 3,
                                     conv_clamp=conv_clamp)
        self.block1 = SynthesisBlock(channels[0], channels[1], w_dim, input_resolution * 4, 3,
                                     conv_clamp=conv_clamp)

    def forward(
        self,
        rgb: torch.Tensor,
        features: torch.Tensor,
        ws: torch.Tensor,
        noise_mode: str = "none",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``ws`` is the full (B, num_ws, w_dim) latent; only its last vector is used (three times)."""
        ws = ws[:, -1:].repeat(1, 3, 1)
        if features.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            features = F.interpolate(features, size=size, mode="bilinear", align_corners=False, antialias=True)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=True)
        x, rgb = self.block0(features, rgb, ws, noise_mode, generator)
        _, rgb = self.block1(x, rgb, ws, noise_mode, generator)
        return rgb
