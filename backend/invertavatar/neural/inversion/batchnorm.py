"""BatchNorm with a selectable statistics source, and the official few-shot inference mode.

The released few-shot script runs the inversion wrapper in train mode and switches only the U-Net input layers
and IR-SE bodies back to eval (reference §3.3, parity README §8). So at *inference* the W+ encoder and the U-Net
decoders normalise with the statistics of the current batch of frames, while the bodies use their running
statistics. Our :class:`BatchNorm2d` expresses that without train mode: ``batch_stats = True`` normalises with
the batch's (biased) statistics and leaves the stored running statistics untouched, so inference never mutates
the weights. Module ``train()`` keeps its usual meaning for training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.errors import InvertAvatarError

BN_MODES = ("eval", "official")


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters and buffers) that can use batch statistics outside train mode."""

    batch_stats: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_stats and not self.training:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return super().forward(x)


def _set(module: nn.Module, batch_stats: bool) -> None:
    for m in module.modules():
        if isinstance(m, BatchNorm2d):
            m.batch_stats = batch_stats


def set_batchnorm_mode(net: nn.Module, mode: str) -> None:
    """``eval``: every BatchNorm on running statistics. ``official``: the released few-shot inference mode
    (W+ encoder and U-Net decoders on batch statistics, U-Net input layers and bodies on running statistics).

    ``net`` is an ``InversionNet``; anything it lacks is skipped.
    """
    if mode not in BN_MODES:
        raise InvertAvatarError("bad_option", f"Unknown BatchNorm mode '{mode}'.", f"Use one of {', '.join(BN_MODES)}.")
    _set(net, False)
    net.batchnorm_mode = mode  # read by the pipeline to choose the official frame grouping
    if mode == "eval":
        return
    encoder = getattr(net, "encoder", None)
    if encoder is not None:
        _set(encoder, True)
    unets = getattr(net, "unet_encoder", None)
    for unet in (unets.children() if unets is not None else []):
        for name, child in unet.named_children():
            if name not in ("input_layer", "body"):
                _set(child, True)
    net.batchnorm_mode = mode


def batchnorm_mode(net: nn.Module) -> str:
    return getattr(net, "batchnorm_mode", "eval")
