"""IR-SE residual body (ArcFace style), the backbone of every inversion encoder (reference §3.1, §7 names).

``input_layer`` = conv 3x3 (no bias) + BN + PReLU; ``body.{i}`` = bottleneck units whose first unit per stage has
stride 2. The official configuration has 24 units (IR-SE-50) and 30,948,160 body parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from invertavatar.neural.inversion.batchnorm import BatchNorm2d
from invertavatar.neural.inversion.config import EncoderConfig


class SEModule(nn.Module):
    """Squeeze-and-excitation with 1x1 convolutions (names ``fc1``, ``fc2``, no biases)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class BottleneckIRSE(nn.Module):
    """res_layer: BN, conv3x3, PReLU, conv3x3 (stride), BN, SE; shortcut: max-pool or 1x1 conv + BN."""

    def __init__(self, in_channels: int, depth: int, stride: int, reduction: int) -> None:
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False),
                                                BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            BatchNorm2d(in_channels), nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), BatchNorm2d(depth), SEModule(depth, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def input_layer(in_channels: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), BatchNorm2d(width), nn.PReLU(width))


def body(config: EncoderConfig) -> nn.Sequential:
    """All bottleneck units in order; the first unit of each stage halves the resolution."""
    units = []
    previous = config.stage_widths[0]
    for width, count in zip(config.stage_widths, config.stage_units):
        for i in range(count):
            units.append(BottleneckIRSE(previous, width, 2 if i == 0 else 1, config.se_reduction))
            previous = width
    return nn.Sequential(*units)


def stage_ends(config: EncoderConfig) -> list[int]:
    """Index of the last unit of each stage (official: 2, 6, 20, 23)."""
    ends, total = [], 0
    for count in config.stage_units:
        total += count
        ends.append(total - 1)
    return ends


def run_body(units: nn.Sequential, x: torch.Tensor, taps: list[int]) -> list[torch.Tensor]:
    """Run the body and return the outputs after the listed unit indices, in that order."""
    wanted = {index: slot for slot, index in enumerate(taps)}
    out: list[torch.Tensor | None] = [None] * len(taps)
    for index, unit in enumerate(units):
        x = unit(x)
        if index in wanted:
            out[wanted[index]] = x
        if index >= max(taps):
            break
    return out  # type: ignore[return-value]
