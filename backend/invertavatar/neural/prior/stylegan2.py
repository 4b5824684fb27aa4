"""StyleGAN2 synthesis (skip architecture) with the three extensions the prior needs.

1. ``return_list``: return the to-RGB accumulation and the hidden activations from the block at
   ``list_start_res`` onward: [img@start, x@start, x@2*start, ..., x@res, img@res] (6 tensors at 256 with start 32).
2. ``inject``: conditioning maps (C + 1 channels, last = alpha) that overwrite, by alpha blending, the to-RGB image
   and hidden activation after the start block and the hidden activation after every later block but the last.
3. ``sft``: per-resolution (scale, shift) applied to the second channel half after conv0 (used by the encoders).
"""

from __future__ import annotations

import torch
from torch import nn

from invertavatar.neural.ops.filters import make_filter, upsample2d
from invertavatar.neural.ops.layers import MappingNetwork, SynthesisLayer, ToRGBLayer


class SynthesisBlock(nn.Module):
    """One resolution level: (const or 2x-up conv0) + conv1 + to-RGB skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        use_noise: bool = True,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", make_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=True, use_noise=use_noise, conv_clamp=conv_clamp
            )
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, use_noise=use_noise,
                                    conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        sft: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws`` (B, num_conv + 1, w_dim): one w per convolution, the last for to-RGB."""
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0], noise_mode, generator)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, generator)
            if sft is not None:
                scale, shift = sft
                half = x.shape[1] // 2
                x = torch.cat([x[:, :half], x[:, half:] * scale + shift], dim=1)
            x = self.conv1(x, ws[:, 1], noise_mode, generator)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, ws[:, -1])
        img = y if img is None else img + y
        return x, img


def _blend(base: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Overwrite ``base`` by ``cond[:, :-1]`` where ``cond[:, -1]`` (alpha) is 1, linearly in between."""
    alpha = cond[:, -1:]
    return base * (1 - alpha) + cond[:, :-1] * alpha


class SynthesisNetwork(nn.Module):
    """Blocks b4 ... b{img_resolution}; consumes ``num_ws`` w vectors."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int,
        channel_max: int,
        list_start_res: int = 32,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.list_start_res = list_start_res
        self.resolutions = [2**i for i in range(2, img_resolution.bit_length())]
        self.num_ws = 0
        for res in self.resolutions:
            in_ch = 0 if res == 4 else min(channel_base // (res // 2), channel_max)
            out_ch = min(channel_base // res, channel_max)
            block = SynthesisBlock(in_ch, out_ch, w_dim, res, img_channels, conv_clamp=conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last to-RGB

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        return_list: bool = False,
        inject: list[torch.Tensor] | None = None,
        sft: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Synthesize from ws (B, num_ws, w_dim); see the module docstring for the extensions."""
        if ws.ndim != 3 or ws.shape[1] < self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        outputs: list[torch.Tensor] = []
        index = 0
        for res in self.resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            block_ws = ws[:, index : index + block.num_conv + 1]
            index += block.num_conv
            x, img = block(x, img, block_ws, noise_mode, generator, None if sft is None else sft.get(res))
            if res < self.list_start_res:
                continue
            if inject is not None and res < self.img_resolution:
                level = (res // self.list_start_res).bit_length() - 1  # 0 at the start block
                if level == 0:
                    img = _blend(img, inject[0])
                    x = _blend(x, inject[1])
                elif level + 1 < len(inject):
                    x = _blend(x, inject[level + 1])
            if return_list:
                if res == self.list_start_res:
                    outputs.append(img)
                outputs.append(x)
        if return_list:
            outputs.append(img)
            return outputs
        return img


class StyleGenerator(nn.Module):
    """Mapping + synthesis pair (each of the prior's three backbones carries both, as in the checkpoint)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int,
        channel_max: int,
        mapping_layers: int = 2,
        mapping_lr_multiplier: float = 0.01,
        list_start_res: int = 32,
    ) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max,
                                          list_start_res=list_start_res)
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.synthesis.num_ws, mapping_layers,
                                      mapping_lr_multiplier)
