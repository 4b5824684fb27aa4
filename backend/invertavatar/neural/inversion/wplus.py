"""Coarse stage: the e4e-style W+ encoder (reference §3.1). Image -> (B, num_ws, w_dim) offsets from w_avg.

Three taps of the IR-SE body (ends of stages 2, 3, 4) form a small FPN; one ``GradualStyleBlock`` per w reads
the coarse, middle or fine map (3 / 4 / rest). Head 0 is the base w copied to all positions, the others add
deltas; the caller adds ``latent_avg``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.neural.config import PriorConfig
from invertavatar.neural.inversion.config import EncoderConfig
from invertavatar.neural.inversion.irse import body, input_layer, run_body, stage_ends
from invertavatar.neural.ops.layers import FullyConnectedLayer


class GradualStyleBlock(nn.Module):
    """log2(spatial) stride-2 convs + LeakyReLU down to 1x1, then an equalised FC (names ``convs.{0,2,..}``, ``linear``)."""

    def __init__(self, in_channels: int, out_channels: int, spatial: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = FullyConnectedLayer(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


class WPlusEncoder(nn.Module):
    """Image (B, 3, R, R) in [-1, 1], R = the prior's plane resolution -> W+ deltas (B, num_ws, w_dim)."""

    def __init__(self, prior: PriorConfig, config: EncoderConfig, num_ws: int) -> None:
        super().__init__()
        widths = config.stage_widths
        res = prior.plane_resolution
        self.num_ws, self.taps = num_ws, stage_ends(config)[1:]
        self.coarse, self.middle = config.coarse_heads, config.coarse_heads + config.middle_heads
        self.input_layer = input_layer(3, widths[0])
        self.body = body(config)
        fpn = widths[3]
        self.styles = nn.ModuleList()
        for i in range(num_ws):
            spatial = res // 16 if i < self.coarse else res // 8 if i < self.middle else res // 4
            self.styles.append(GradualStyleBlock(fpn, prior.w_dim, spatial))
        self.latlayer1 = nn.Conv2d(widths[2], fpn, 1)
        self.latlayer2 = nn.Conv2d(widths[1], fpn, 1)
        # Progressive training adds one delta head at a time; ``stage`` = how many deltas are used (all by default,
        # the reference's "Inference" stage). An official snapshot may record a smaller training stage.
        self.stage = num_ws - 1

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        c1, c2, c3 = run_body(self.body, self.input_layer(image), self.taps)
        p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer1(c2)
        p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer2(c1)
        base = self.styles[0](c3)
        ws = [base]
        for i in range(1, self.num_ws):
            if i > self.stage:
                ws.append(base)
                continue
            source = c3 if i < self.coarse else p2 if i < self.middle else p1
            ws.append(base + self.styles[i](source))
        return torch.stack(ws, dim=1)

