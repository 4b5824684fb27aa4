"""FIR resampling and modulated convolution, written with stock PyTorch ops only.

StyleGAN2 upsamples by inserting zeros and low-pass filtering with the separable [1, 3, 3, 1] kernel.
These functions reproduce that arithmetic exactly (same padding and gain) so stored weights behave as trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_filter(taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)) -> torch.Tensor:
    """2-D low-pass filter as the outer product of ``taps``, normalised to sum 1 (shape (k, k))."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def fir_filter(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """Pad ``x`` by ``pad`` = (before, after) on both axes and convolve every channel with ``f``.

    A true convolution (the kernel is flipped before the correlation PyTorch computes); for symmetric
    filters this changes nothing but keeps the definition unambiguous.
    """
    channels = x.shape[1]
    kernel = (f.flip([0, 1]) * gain).to(x.dtype)
    kernel = kernel[None, None].repeat(channels, 1, 1, 1)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, kernel, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Zero-insertion upsampling followed by the FIR low-pass (output size = factor * input size)."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, h * factor, w * factor)
    up[:, :, ::factor, ::factor] = x
    taps = f.shape[-1]
    pad = ((taps + factor - 1) // 2, (taps - factor) // 2)
    return fir_filter(up, f, pad, gain=factor * factor)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: bool = False,
    resample_filter: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-sample modulated convolution (StyleGAN2), as one grouped convolution over the batch.

    ``weight`` (O, I, k, k) is scaled per sample by ``styles`` (B, I); with ``demodulate`` every output
    channel is renormalised to unit norm. ``up`` doubles the resolution: a stride-2 transposed
    convolution followed by the FIR filter. As in the reference, the upsampling layer is a *true* convolution of
    the zero-inserted input (the transposed convolution uses the stored kernel unflipped), while the plain layer is
    PyTorch's correlation; the two differ for asymmetric kernels, so this matters for trained weights.
    """
    batch, in_ch, height, width = x.shape
    out_ch, _, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_ch, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(batch, out_ch, 1, 1, 1)
    x = x.reshape(1, batch * in_ch, height, width)
    if not up:
        w = w.reshape(batch * out_ch, in_ch, kh, kw)
        x = F.conv2d(x, w.to(x.dtype), padding=kh // 2, groups=batch)
        return x.reshape(batch, out_ch, *x.shape[2:])
    if resample_filter is None:
        raise ValueError("an upsampling convolution needs its resample filter")
    # The reference runs its up layers with flip_weight=False: conv_transpose2d with the unflipped kernel.
    w = w.transpose(1, 2).reshape(batch * in_ch, out_ch, kh, kw)
    x = F.conv_transpose2d(x, w.to(x.dtype), stride=2, groups=batch)
    x = x.reshape(batch, out_ch, *x.shape[2:])
    # (2H + k - 2) samples -> filter with padding so that exactly 2H remain, centred as in StyleGAN2.
    taps = resample_filter.shape[-1]
    total_pad = 2 * height - (x.shape[-1] - taps + 1)
    return fir_filter(x, resample_filter, (total_pad // 2, total_pad - total_pad // 2), gain=4.0)
