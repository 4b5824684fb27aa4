"""Fine stage: pixel-aligned U-Nets with a ConvGRU after every decoder stage (reference §3.3, names of §7).

The body taps c0..c3 and the bottom map of an IR-SE body feed four ``RecurrentUp`` stages. Each stage, for every
frame of the call in temporal order, concatenates the frame's skip map with the (upsampled) previous stage output,
applies ``DoubleConv`` and updates its ConvGRU state; the stage's output is the final state, broadcast to every frame
of the call. All outputs of a U-Net are therefore functions of its four final hidden states, which is what a
session stores.

``use_gru=False`` (ablation) replaces the recurrence by the mean over the call's frames and carries no state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.neural.config import PriorConfig
from invertavatar.neural.inversion.batchnorm import BatchNorm2d
from invertavatar.neural.inversion.config import EncoderConfig
from invertavatar.neural.inversion.irse import body, input_layer, run_body, stage_ends

Hidden = list[torch.Tensor | None]


class DoubleConv(nn.Module):
    """BN -> conv3x3 -> PReLU -> conv3x3 -> PReLU -> PReLU (two PReLUs in a row, as in the reference)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            BatchNorm2d(in_channels), nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1), nn.PReLU(out_channels), nn.PReLU(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class ConvGRU(nn.Module):
    """h' = (1 - z) h + z tanh(conv([x, r h])), [r, z] = sigmoid(conv([x, h])); names ``ih.0``, ``hh.0``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ih = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 3, 1, 1))
        self.hh = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        if h is None:
            h = torch.zeros_like(x)  # the documented zero initial state
        reset, update = torch.sigmoid(self.ih(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.hh(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * candidate


class RecurrentUp(nn.Module):
    """PixelShuffle(factor) of the previous output, concat with the skip (skip first), DoubleConv, ConvGRU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, factor: int, use_gru: bool) -> None:
        super().__init__()
        self.factor, self.use_gru = factor, use_gru
        self.conv = DoubleConv(skip_channels + in_channels // factor**2, out_channels)
        if use_gru:
            self.conv_gru = ConvGRU(out_channels)

    def forward(self, previous: torch.Tensor, skips: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """previous (B, C, h, w) aggregate of the last stage; skips (B, T, C_s, H, W) -> new state (B, C_o, H, W)."""
        up = F.pixel_shuffle(previous, self.factor) if self.factor > 1 else previous
        b, t = skips.shape[:2]
        x = torch.cat([skips.flatten(0, 1), up.repeat_interleave(t, dim=0)], dim=1)
        x = self.conv(x).unflatten(0, (b, t))
        if not self.use_gru:
            return x.mean(dim=1)
        for i in range(t):  # temporal order within the call
            h = self.conv_gru(x[:, i], h)
        return h


class _UNetBase(nn.Module):
    """Input layer + IR-SE body + four recurrent decoder stages; subclasses add the output heads."""

    def __init__(self, in_channels: int, config: EncoderConfig, use_gru: bool, resolution: int) -> None:
        super().__init__()
        w, d = config.stage_widths, config.decoder_widths
        ends = stage_ends(config)
        # c0, c1, c2 = ends of stages 1-3, c3 = first unit of stage 4, bottom = end of stage 4.
        self.taps = [ends[0], ends[1], ends[2], ends[2] + 1, ends[3]]
        self.resolution = resolution
        self.input_layer = input_layer(in_channels, w[0])
        self.body = body(config)
        self.up1 = RecurrentUp(w[3], w[3], d[0], 1, use_gru)
        self.up2 = RecurrentUp(d[0], w[2], d[1], 2, use_gru)
        self.up3 = RecurrentUp(d[1], w[1], d[2], 2, use_gru)
        self.up4 = RecurrentUp(d[2], w[0], d[3], 2, use_gru)
        self.use_gru = use_gru

    def decode(self, x: torch.Tensor, hidden: Hidden | None) -> list[torch.Tensor]:
        """x (B, T, C_in, S, S) -> the four new stage states (B, C_k, R/16 .. R/2), R = the body's resolution.

        A larger input (the tri-plane U-Net gets the 512 images) is average-pooled to R first, as the reference does.
        """
        b, t = x.shape[:2]
        if x.shape[-1] != self.resolution:
            x = F.adaptive_avg_pool2d(x.flatten(0, 1), self.resolution).unflatten(0, (b, t))
        c0, c1, c2, c3, bottom = (f.unflatten(0, (b, t)) for f in
                                  run_body(self.body, self.input_layer(x.flatten(0, 1)), self.taps))
        hidden = list(hidden) if hidden is not None and self.use_gru else [None] * 4
        s1 = self._first(bottom, c3, hidden[0])
        s2 = self.up2(s1, c2, hidden[1])
        s3 = self.up3(s2, c1, hidden[2])
        s4 = self.up4(s3, c0, hidden[3])
        return [s1, s2, s3, s4]

    def _first(self, bottom: torch.Tensor, c3: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """Stage 1 sees each frame's own bottom map (concat per frame), unlike later stages."""
        b, t = bottom.shape[:2]
        x = self.up1.conv(torch.cat([c3.flatten(0, 1), bottom.flatten(0, 1)], dim=1)).unflatten(0, (b, t))
        if not self.use_gru:
            return x.mean(dim=1)
        for i in range(t):
            h = self.up1.conv_gru(x[:, i], h)
        return h


class TextureUNet(_UNetBase):
    """Input 7 ch in UV space [unwrapped image, unwrapped residual, visibility] -> 4 additive texture offsets."""

    def __init__(self, prior: PriorConfig, config: EncoderConfig, use_gru: bool = True) -> None:
        super().__init__(7, config, use_gru, prior.plane_resolution)
        d, start = config.decoder_widths, prior.inject_start_res
        self.outconv0 = nn.Conv2d(d[1], prior.plane_channels, 1)  # the to-RGB image level
        self.outconv1 = nn.Conv2d(d[1], prior.channels_at(start), 1)
        self.outconv2 = nn.Conv2d(d[2], prior.channels_at(2 * start), 1)
        self.outconv3 = nn.Conv2d(d[3], prior.channels_at(4 * start), 1)

    def heads(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Offsets for texture levels [img@start, x@start, x@2start, x@4start]."""
        return [self.outconv0(states[1]), self.outconv1(states[1]), self.outconv2(states[2]), self.outconv3(states[3])]


def _sft_head(channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(channels, out_channels, 3, 1, 1))


class TriPlaneUNet(_UNetBase):
    """Input 6 ch in image space [image, residual] -> SFT (scale, shift) per static-backbone resolution."""

    def __init__(self, prior: PriorConfig, config: EncoderConfig, use_gru: bool = True) -> None:
        super().__init__(6, config, use_gru, prior.plane_resolution)
        d, f, res = config.decoder_widths, config.final_head_width, prior.plane_resolution
        self.final_head = nn.Sequential(nn.Conv2d(d[3] // 4, f, 3, 1, 1), nn.PReLU(f), nn.Conv2d(f, f, 3, 1, 1),
                                        nn.PReLU(f))
        widths = list(d) + [f]
        self.resolutions = [res // 16, res // 8, res // 4, res // 2, res]
        for r, c in zip(self.resolutions, widths):
            if r <= 4:
                continue  # the 4x4 block is the constant input: no conv0 to condition
            half = prior.channels_at(r) // 2
            setattr(self, f"condition_scale{r}", _sft_head(c, half))
            setattr(self, f"condition_shift{r}", _sft_head(c, half))

    def heads(self, states: list[torch.Tensor]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        maps = list(states) + [self.final_head(F.pixel_shuffle(states[3], 2))]
        out = {}
        for r, m in zip(self.resolutions, maps):
            if r > 4:
                out[r] = (getattr(self, f"condition_scale{r}")(m), getattr(self, f"condition_shift{r}")(m))
        return out

    def start_as_identity(self) -> None:
        """Initialise the last SFT convs so scale = 1 and shift = 0 (training starts from the coarse result)."""
        for r in self.resolutions:
            if r > 4:
                for name, bias in (("scale", 1.0), ("shift", 0.0)):
                    conv = getattr(self, f"condition_{name}{r}")[2]
                    nn.init.zeros_(conv.weight)
                    nn.init.constant_(conv.bias, bias)
