"""render_textured: a textured plane seen by a frontal camera, checked against the analytic answer."""

from __future__ import annotations

import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.render import Camera, render_textured

QUAD = torch.tensor([[0, 1, 2], [0, 2, 3]])
PLANE = torch.tensor([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.1, 0.1, 0.0], [-0.1, 0.1, 0.0]])
UV = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def _ramp_texture(size: int = 32) -> torch.Tensor:
    """R = u and G = v at every texel centre (row 0 = v = 1), B = 0.25: bilinear sampling reproduces u, v exactly."""
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    u = centres[None, :].expand(size, size)
    v = (1.0 - centres)[:, None].expand(size, size)
    return torch.stack([u, v, torch.full_like(u, 0.25)], -1)


def test_textured_plane_matches_the_analytic_uv(backend):
    size, distance, focal = 40, 0.5, 80.0
    camera = Camera.frontal(focal, size, size, distance)
    image, mask = render_textured(PLANE, QUAD, UV, QUAD, _ramp_texture(), camera, background=torch.tensor(
        [1.0, 0.0, 1.0]), backend=backend)
    assert image.shape == (1, size, size, 3) and mask.shape == (1, size, size)
    # The plane spans ±0.1 m at 0.5 m: ±16 px around the centre, i.e. pixel columns 4..35.
    expected = torch.zeros(size, size)
    expected[4:36, 4:36] = 1.0
    assert torch.equal(mask[0], expected)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    u = ((xs - size / 2) * distance / focal + 0.1) / 0.2
    v = (-(ys - size / 2) * distance / focal + 0.1) / 0.2
    interior = (u > 1 / 32) & (u < 1 - 1 / 32) & (v > 1 / 32) & (v < 1 - 1 / 32)  # away from the clamped border
    torch.testing.assert_close(image[0, ..., 0][interior], u[interior], atol=1e-5, rtol=0)
    torch.testing.assert_close(image[0, ..., 1][interior], v[interior], atol=1e-5, rtol=0)
    torch.testing.assert_close(image[0][mask[0] == 0], torch.tensor([1.0, 0.0, 1.0]).expand(
        int((mask[0] == 0).sum()), 3))


def test_back_of_a_plane_is_culled_unless_asked(backend):
    camera = Camera.frontal(80.0, 24, 24, 0.5)
    texture = torch.ones(4, 4, 3)
    _, mask = render_textured(PLANE, QUAD.flip(1), UV, QUAD.flip(1), texture, camera, backend=backend)
    assert mask.sum() == 0
    _, mask = render_textured(PLANE, QUAD.flip(1), UV, QUAD.flip(1), texture, camera, cull_backfaces=False,
                              backend=backend)
    assert mask.sum() > 100


def test_headlight_shading_darkens_oblique_surfaces(backend):
    camera = Camera.frontal(80.0, 24, 24, 0.5)
    texture = torch.ones(4, 4, 3)
    flat, mask = render_textured(PLANE, QUAD, UV, QUAD, texture, camera, shading=True, backend=backend)
    centre = flat[0, 12, 12]
    assert centre.min() > 0.99  # facing the light
    turn = torch.tensor([[0.8, 0.0, 0.6], [0.0, 1.0, 0.0], [-0.6, 0.0, 0.8]])  # 37° about +Y (cos = 0.8)
    tilted, _ = render_textured(PLANE @ turn.T, QUAD, UV, QUAD, texture, camera, shading=True, backend=backend)
    assert tilted[0, 12, 12, 0].item() == pytest.approx(0.35 + 0.65 * 0.8, abs=0.02)


def test_gradients_reach_texture_and_vertices(backend):
    camera = Camera.frontal(80.0, 24, 24, 0.5)
    texture = _ramp_texture(8).requires_grad_()
    vertices = PLANE.clone().requires_grad_()
    image, _ = render_textured(vertices, QUAD, UV, QUAD, texture, camera, backend=backend)
    image[..., 0].sum().backward()
    assert texture.grad.abs().sum() > 0 and vertices.grad[:, 0].abs().sum() > 0


def test_bad_texture_is_refused():
    camera = Camera.frontal(80.0, 8, 8, 0.5)
    with pytest.raises(InvertAvatarError) as err:
        render_textured(PLANE, QUAD, UV, QUAD, torch.zeros(4, 4, 3, dtype=torch.uint8), camera)
    assert "255" in err.value.hint
