"""De-lighting recovers a known albedo from colours rendered under a known spherical-harmonics light."""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.texture.delight import fit_lighting, relight, remove_shading, sh_basis, shading

# A warm key light from the upper left plus ambient, in SH coefficients per channel (9, 3).
LIGHT = torch.tensor([[0.80, 0.75, 0.70], [0.25, 0.22, 0.20], [0.30, 0.30, 0.28], [-0.20, -0.18, -0.16],
                      [0.05, 0.04, 0.04], [0.06, 0.05, 0.05], [-0.04, -0.04, -0.03], [0.02, 0.02, 0.02],
                      [0.03, 0.03, 0.02]])


def _hemisphere(n: int, seed: int = 0) -> torch.Tensor:
    """Unit normals of the camera-facing half of a head (z towards the camera is negative in OpenCV axes)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    v[:, 2] = -np.abs(v[:, 2])
    return torch.from_numpy(v / np.linalg.norm(v, axis=1, keepdims=True)).float()


def _albedo(n: int, seed: int = 1) -> torch.Tensor:
    """Skin-like albedo with blotches that do not follow the normals (freckles, redness)."""
    rng = np.random.default_rng(seed)
    base = np.array([0.75, 0.55, 0.45])
    return torch.from_numpy(base * (1 + 0.08 * rng.normal(size=(n, 1))) * (1 + 0.03 * rng.normal(size=(n, 3)))
                            ).float().clamp(0, 1)


def test_known_albedo_is_recovered_under_known_light():
    normals, albedo = _hemisphere(20000), _albedo(20000)
    shade = shading(normals, LIGHT)
    assert shade.min() > 0.2  # the light is physically plausible on the visible half
    lit = albedo * shade
    recovered, lighting = remove_shading(normals, lit, torch.ones(len(lit)))
    # The albedo is known up to one gain per channel (light brightness and albedo brightness trade off).
    gain = (recovered * albedo).sum(0) / (recovered * recovered).sum(0)
    error = ((recovered * gain - albedo).abs() / albedo).mean().item()
    before = ((lit * (albedo.mean(0) / lit.mean(0)) - albedo).abs() / albedo).mean().item()
    assert error < 0.01, error  # measured: 0.25 % mean relative error (the small ridge on the higher orders)
    assert before > 0.15  # the shading itself was a large error before de-lighting
    # The fitted light has the true light's shape: the same shading up to scale.
    fitted = shading(normals, lighting)
    ratio = fitted / shade
    assert (ratio.std(0) / ratio.mean(0)).max() < 0.01


def test_fit_with_known_albedo_recovers_the_light():
    normals, albedo = _hemisphere(5000, seed=4), _albedo(5000, seed=5)
    lighting = fit_lighting(normals, albedo * shading(normals, LIGHT), torch.ones(5000), albedo=albedo)
    assert torch.allclose(shading(normals, lighting), shading(normals, LIGHT), atol=0.02)


def test_outliers_do_not_bend_the_fit():
    normals, albedo = _hemisphere(20000, seed=2), _albedo(20000, seed=3)
    lit = albedo * shading(normals, LIGHT)
    lit[:1500] = torch.tensor([0.1, 0.07, 0.05])  # dark hair that slipped through the skin mask
    recovered, _ = remove_shading(normals, lit, torch.ones(len(lit)))
    clean = recovered[1500:]
    gain = (clean * albedo[1500:]).sum(0) / (clean * clean).sum(0)
    assert ((clean * gain - albedo[1500:]).abs() / albedo[1500:]).mean().item() < 0.01  # measured 0.31 %


def test_basis_is_unit_ambient_and_orthogonal_in_the_linear_band():
    normals = _hemisphere(1000)
    basis = sh_basis(normals)
    assert basis.shape == (1000, 9) and torch.allclose(basis[:, 0], torch.ones(1000))
    ambient = torch.zeros(9, 1)
    ambient[0] = 1.0
    assert torch.allclose(shading(normals, ambient), torch.ones(1000, 1))


def test_relight_puts_the_photo_light_on_an_albedo_render():
    size = 64
    y, x = np.mgrid[0:size, 0:size]
    u, v = (x - size / 2 + 0.5) / (size / 2), (y - size / 2 + 0.5) / (size / 2)
    inside = u * u + v * v < 0.95
    z = -np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
    normals = np.stack([u, v, z], -1).astype(np.float32) * inside[..., None]
    albedo = np.zeros((size, size, 3), np.float32)
    albedo[inside] = [0.7, 0.5, 0.4]
    shade = shading(torch.from_numpy(normals[inside]), LIGHT).numpy()
    photo = np.zeros_like(albedo)
    photo[inside] = albedo[inside] * shade
    relit = relight((albedo * 255).astype(np.uint8), (np.clip(photo, 0, 1) * 255).astype(np.uint8), normals, inside)
    error = np.abs(relit[inside].astype(float) - np.clip(photo[inside], 0, 1) * 255).mean()
    assert error < 2.0, error  # within quantisation of the uint8 images
