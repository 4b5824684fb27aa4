"""Losses of the encoder stages (reference §4).

Implemented: L1 on images (final and raw), the W+ delta regulariser. LPIPS (AlexNet) and the ArcFace identity loss
need pretrained weights this project cannot ship or download; asking for them fails with a clear message instead
of silently training without them. The adversarial terms are not implemented (see docs/neural-inversion.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from invertavatar.errors import InvertAvatarError


def image_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).abs().mean()


def raw_l1(raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Low-resolution raw RGB against the target filtered down to the render resolution."""
    small = F.interpolate(target, size=raw.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    return (raw - small).abs().mean()


def w_delta(ws: torch.Tensor) -> torch.Tensor:
    """Mean L2 norm of w_i - w_0 (keeps W+ close to W, e4e's regulariser)."""
    return (ws[:, 1:] - ws[:, :1]).norm(dim=-1).mean()


def check_unavailable_losses(weights: dict[str, float]) -> None:
    """Refuse loss terms whose pretrained networks are not available in this version."""
    for name, needs in (("lpips", "the LPIPS AlexNet weights"), ("identity", "ArcFace model_ir_se50.pth"),
                        ("adversarial", "a trained discriminator")):
        if float(weights.get(name, 0.0)) > 0:
            raise InvertAvatarError(
                "loss_unavailable", f"The '{name}' loss needs {needs}, which this version cannot use.",
                f"Set its weight to 0 in the training config; L1, raw L1 and the W+ regulariser are available.")
