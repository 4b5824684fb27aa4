"""Shading removal: estimate a frame's lighting as second-order spherical harmonics and divide it out.

Skin colour seen at a texel is ``albedo × shading(n)``, with ``n`` the fitted surface normal in camera space and
``shading`` a 9-coefficient SH irradiance per colour channel (low-frequency, distant light: the classic model of
Ramamoorthi & Hanrahan). With the albedo unknown, each frame's lighting is fitted to the seen skin colours as if the
albedo were constant: skin's albedo varies little compared with how much light varies over a head, and what it
does vary (brows, lips) covers few texels, which the robust reweighting below discounts further.

The shading is normalised to a weighted mean of 1 over the fitted texels, so the albedo keeps the photo's overall
brightness and white balance (neither can be told apart from the light's from one photo) and only the spatial
variation — shadows under the chin, the darker side of a side-lit face, highlights — is removed.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_SHADING = 0.4  # a texel never brightens more than 2.5× (deep shadow carries little signal)
MAX_FIT_TEXELS = 40000  # a spread subset is plenty for 27 unknowns and keeps the fit cheap
RIDGE = 1e-3  # pulls the higher-order terms towards zero when the normals cover a narrow range (one frontal photo)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """Real SH basis up to order 2 (N, 9) of unit normals (N, 3), with the irradiance convolution folded in.

    The constants are the cosine-lobe convolution (2π/3, π/4) times the basis normalisation, relative to the
    constant term, which is scaled to 1 so that a unit ambient light gives shading 1.
    """
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.ones_like(x),
        1.154701 * y, 1.154701 * z, 1.154701 * x,
        0.968246 * x * y, 0.968246 * y * z, 0.279508 * (3 * z * z - 1), 0.968246 * x * z,
        0.484123 * (x * x - y * y),
    ], -1)


def fit_lighting(normals: torch.Tensor, colour: torch.Tensor, weight: torch.Tensor,
                 albedo: torch.Tensor | None = None, iterations: int = 3) -> torch.Tensor:
    """SH lighting (9, C) such that ``colour ≈ albedo × sh_basis(normals) @ lighting`` in weighted least squares.

    ``normals`` (N,3) unit, ``colour`` (N,C), ``weight`` (N,) ≥ 0, ``albedo`` (N,C) or ``None`` (constant albedo,
    absorbed into the light). A few reweighted passes (Cauchy-like) stop hair or a beard that passed the skin mask
    from bending the fit. Returns float32.
    """
    n = normals.shape[0]
    if n > MAX_FIT_TEXELS:
        pick = torch.linspace(0, n - 1, MAX_FIT_TEXELS).long()
        normals, colour, weight = normals[pick], colour[pick], weight[pick]
        albedo = albedo[pick] if albedo is not None else None
    basis = sh_basis(normals.double())
    target = colour.double()
    w = weight.double().clamp(min=0)
    channels = target.shape[1]
    lighting = torch.zeros(9, channels, dtype=torch.float64)
    regulariser = torch.full((9,), RIDGE, dtype=torch.float64)
    regulariser[0] = 1e-6
    for _ in range(iterations):
        for c in range(channels):
            design = basis * (albedo[:, c:c + 1].double() if albedo is not None else 1.0)
            normal_matrix = design.T @ (design * w[:, None])
            # The ridge is relative to the normal matrix's own size, so it does not depend on brightness or count.
            a = normal_matrix + torch.diag(regulariser) * float(torch.trace(normal_matrix)) / 9.0
            b = design.T @ (w * target[:, c])
            lighting[:, c] = torch.linalg.solve(a + torch.eye(9, dtype=torch.float64) * 1e-12, b)
        predicted = (basis @ lighting) * (albedo.double() if albedo is not None else 1.0)
        residual = (predicted - target).abs().mean(1)
        spread = float(torch.median(residual[w > 0])) if (w > 0).any() else 1.0
        w = weight.double().clamp(min=0) / (1.0 + (residual / max(3.0 * spread, 1e-6)) ** 2)
    return lighting.float()


def shading(normals: torch.Tensor, lighting: torch.Tensor) -> torch.Tensor:
    """Irradiance (N, C) of ``lighting`` (9, C) at unit ``normals`` (N, 3)."""
    return sh_basis(normals.to(lighting.dtype)) @ lighting


def remove_shading(normals: torch.Tensor, colour: torch.Tensor, weight: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Albedo (N, C) of seen colours under one frame's fitted lighting, and the lighting (9, C).

    The shading is normalised to a weighted mean of 1 (see the module docstring) and floored at ``MIN_SHADING``.
    """
    if weight.sum() <= 0:
        return colour, torch.zeros(9, colour.shape[1])
    lighting = fit_lighting(normals, colour, weight)
    shade = shading(normals, lighting)
    mean = (shade * weight[:, None]).sum(0) / weight.sum()
    lighting = lighting / mean.clamp(min=1e-6)
    shade = (shade / mean.clamp(min=1e-6)).clamp(min=MIN_SHADING)
    return (colour / shade).clamp(0.0, 1.0), lighting


def relight(albedo_render: np.ndarray, photo: np.ndarray, normals: np.ndarray, mask: np.ndarray,
            apply: np.ndarray | None = None) -> np.ndarray:
    """An albedo render (H,W,3) re-lit with the lighting fitted to ``photo`` at the same pixels (uint8 in and out).

    ``normals`` (H,W,3) camera-space unit normals of the render, ``mask`` (H,W) bool where both show the face (the
    fit), ``apply`` (H,W) bool where the light is applied (default ``mask``; the whole rendered head avoids a seam
    at the mask's edge). Used by the evaluation so that a de-lit avatar is scored against photos under the photos'
    own light.
    """
    if not mask.any():
        return albedo_render
    n = torch.from_numpy(normals[mask].astype(np.float32))
    albedo = torch.from_numpy(albedo_render[mask].astype(np.float32) / 255.0)
    seen = torch.from_numpy(photo[mask].astype(np.float32) / 255.0)
    lighting = fit_lighting(n, seen, torch.ones(len(n)), albedo=albedo.clamp(min=1e-3))
    apply = mask if apply is None else apply
    out = albedo_render.astype(np.float32) / 255.0
    lit = torch.from_numpy(out[apply]) * shading(torch.from_numpy(normals[apply].astype(np.float32)), lighting)
    out[apply] = lit.clamp(0.0, 1.0).numpy()
    return (out * 255.0 + 0.5).astype(np.uint8)
