"""Image metrics restricted to a face mask: PSNR, SSIM, and LPIPS when its weights are already on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InvertAvatarError


def _as_float(image: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float (0..1) → float64 in [0, 1]."""
    image = np.asarray(image)
    return image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)


def _check(real: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if real.shape != rendered.shape or real.ndim != 3:
        raise InvertAvatarError("invalid_option", f"Images to compare differ in shape: {real.shape} vs "
                                f"{rendered.shape}.", "Compare a frame with a render of the same size.")
    mask = np.asarray(mask, bool)
    if mask.shape != real.shape[:2]:
        raise InvertAvatarError("invalid_option", f"The mask is {mask.shape}, the images {real.shape[:2]}.",
                                "Give one mask value per pixel.")
    if not mask.any():
        raise InvertAvatarError("invalid_option", "The face mask is empty.", "Compare frames with a detected face.")
    return mask


def masked_psnr(real: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 1.0) over the masked pixels and all channels; ``inf`` when they match exactly."""
    mask = _check(real, rendered, mask)
    error = (_as_float(real) - _as_float(rendered))[mask]
    mse = float(np.mean(error * error))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(1.0 / mse)


def masked_ssim(real: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03) over the masked pixels.

    The SSIM map is computed on the whole image (scikit-image) and averaged inside the mask, so the windows at the
    mask's edge still see their neighbourhood.
    """
    from skimage.metrics import structural_similarity

    mask = _check(real, rendered, mask)
    _, ssim_map = structural_similarity(_as_float(real), _as_float(rendered), data_range=1.0, channel_axis=2,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    return float(ssim_map.mean(axis=2)[mask].mean())


def face_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of the convex hull of detected landmarks (MediaPipe's 478 points span brow to chin)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(np.asarray(landmarks, np.float64)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet weights, which lpips loads through torch hub


def load_lpips() -> tuple[Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None, str]:
    """LPIPS (AlexNet) if the ``lpips`` package and its backbone weights are already here; never downloads.

    Returns ``(metric, "")`` or ``(None, reason)``. The metric is computed on the masked images (outside the mask set
    to zero in both), on the box around the mask.
    """
    try:
        import lpips  # noqa: F401
    except ImportError:
        return None, "the lpips package is not installed"
    import torch

    backbone = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE
    if not backbone.is_file():
        return None, f"its AlexNet weights are not in {backbone.parent} (not downloaded by design)"
    import lpips

    network = lpips.LPIPS(net="alex", verbose=False).eval()

    def metric(real: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> float:
        mask = _check(real, rendered, mask)
        rows, cols = np.nonzero(mask)
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        tensors = [torch.from_numpy((_as_float(x) * mask[..., None])[box] * 2 - 1).permute(2, 0, 1)[None].float()
                   for x in (real, rendered)]
        with torch.no_grad():
            return float(network(*tensors).item())

    return metric, ""
