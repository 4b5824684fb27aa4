"""StyleGAN2 layers with equalised learning rate, parameter-compatible with EG3D's networks.

Stored weights are unscaled (initialised N(0, 1) / lr_multiplier); the run-time gains below turn them into
the effective weights. Reproducing these gains exactly is what lets the released tensors be used unchanged:

* fully connected:  weight * lr_multiplier / sqrt(in),  bias * lr_multiplier
* modulated conv:   gain irrelevant (weight demodulation renormalises every output channel)
* to-RGB:           styles * 1 / sqrt(in * k * k), no demodulation
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.neural.ops.filters import make_filter, modulated_conv2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def fc_gains(in_features: int, lr_multiplier: float) -> tuple[float, float]:
    """(weight gain, bias gain) of an equalised-learning-rate fully connected layer."""
    return lr_multiplier / math.sqrt(in_features), lr_multiplier


def conv_weight_gain(in_channels: int, kernel_size: int) -> float:
    """Run-time gain of an equalised-learning-rate convolution (used by to-RGB style scaling)."""
    return 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor, gain: float, clamp: float | None) -> torch.Tensor:
    """x + bias, leaky ReLU (0.2), times ``gain`` (sqrt 2 keeps the variance), optionally clamped."""
    x = F.leaky_relu(x + bias.reshape(1, -1, *([1] * (x.ndim - 2))), LRELU_SLOPE) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalised learning rate; ``activation`` is ``"linear"`` or ``"lrelu"``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"unsupported activation {activation!r}")
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain, self.bias_gain = fc_gains(in_features, lr_multiplier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        x = F.linear(x, w)
        return bias_lrelu(x, b, LRELU_GAIN, None) if b is not None else F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square (applied to z and to the embedded label)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z (z_dim) + camera label (c_dim) -> ``num_ws`` copies of w, with a running mean ``w_avg``."""

    def __init__(
        self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2, lr_multiplier: float = 0.01
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.embed = FullyConnectedLayer(c_dim, w_dim)  # lr multiplier 1, as in the reference
        widths = [z_dim + w_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            layer = FullyConnectedLayer(widths[i], widths[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """Return ws (B, num_ws, w_dim); ``truncation_psi`` < 1 pulls them towards ``w_avg``."""
        x = torch.cat([normalize_2nd_moment(z), normalize_2nd_moment(self.embed(c.to(z.dtype)))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling) + noise + bias + leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: bool = False,
        use_noise: bool = True,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.use_noise, self.conv_clamp = use_noise, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", make_filter())
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up, resample_filter=self.resample_filter)
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                shape = (x.shape[0], 1, self.resolution, self.resolution)
                noise = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
            elif noise_mode == "const":
                noise = self.noise_const.to(x.dtype)
            else:
                raise ValueError(f"unknown noise mode {noise_mode!r}")
            x = x + noise * self.noise_strength
        return bias_lrelu(x, self.bias, LRELU_GAIN, self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to ``out_channels`` image channels (no demodulation, linear)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = conv_weight_gain(in_channels, 1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


def count_parameters(module: nn.Module) -> int:
    """Total number of trainable-parameter elements (buffers excluded)."""
    return int(np.sum([p.numel() for p in module.parameters()], dtype=np.int64))
