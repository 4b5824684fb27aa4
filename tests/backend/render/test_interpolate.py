"""Perspective-correct interpolation, gradients (gradcheck), UV-space rasterization, normals and image sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.render import Camera, interpolate, rasterize, rasterize_uv, sample_image, vertex_normals

QUAD = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _tilted_plane(dtype=torch.float64):
    """A square strongly tilted in depth (z from -0.3 to +0.3 m in front of a camera 0.6 m away)."""
    return torch.tensor([[[-0.2, -0.15, -0.3], [0.2, -0.15, -0.3], [0.2, 0.15, 0.3], [-0.2, 0.15, 0.3]]],
                        dtype=dtype)


def test_interpolated_positions_reproject_onto_their_pixel_centres(backend):
    camera = Camera.frontal(60.0, 48, 40, 0.9, dtype=torch.float64)
    world = _tilted_plane()
    screen = camera.project(world)
    fragments = rasterize(screen, QUAD, 40, 48, backend=backend)
    mask = fragments.mask[0]
    assert mask.sum() > 500
    position = interpolate(world, fragments, QUAD)  # (1,H,W,3)
    back = camera.project(position[0][mask][None])[0]
    ys, xs = torch.nonzero(mask, as_tuple=True)
    centres = torch.stack([xs + 0.5, ys + 0.5], -1).to(torch.float64)
    torch.testing.assert_close(back[:, :2], centres, atol=1e-9, rtol=0)
    torch.testing.assert_close(back[:, 2], fragments.depth[0][mask])  # depth is the true camera z
    # Screen-space (affine) weights would miss by a visible amount here, so the check above can tell them apart.
    corner_depth = screen[0, :, 2][QUAD[fragments.tri_id[0][mask]]]
    affine = fragments.bary[0][mask] * corner_depth
    affine = affine / affine.sum(-1, keepdim=True)
    naive = (affine[..., None] * world[0][QUAD[fragments.tri_id[0][mask]]]).sum(1)
    assert (camera.project(naive[None])[0, :, :2] - centres).abs().max() > 0.3


def test_gradcheck_vertices_and_attributes(backend):
    # Vertices chosen so that no pixel centre lies within 0.05 px of an edge: the visible set is stable under the
    # finite-difference steps, and gradcheck compares the analytic barycentric gradients with numerical ones.
    screen = torch.tensor([[[0.7, 0.8, 1.2], [7.3, 1.1, 2.0], [6.6, 7.2, 1.5], [1.2, 6.9, 3.0]]],
                          dtype=torch.float64, requires_grad=True)
    attributes = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.5, -1.0]]], dtype=torch.float64,
                              requires_grad=True)

    def render(screen, attributes):
        fragments = rasterize(screen, QUAD, 8, 8, backend=backend)
        return interpolate(attributes, fragments, QUAD), fragments.depth

    covered = rasterize(screen.detach(), QUAD, 8, 8, backend=backend).mask
    assert covered.sum() > 20
    assert torch.autograd.gradcheck(render, (screen, attributes), eps=1e-6, atol=1e-6)


def test_gradcheck_through_the_camera(backend):
    camera = Camera.frontal(20.0, 10, 10, 0.9, dtype=torch.float64)
    world = (_tilted_plane() * 0.8 + torch.tensor([0.013, 0.021, 0.0], dtype=torch.float64)).requires_grad_()
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]],
                           dtype=torch.float64, requires_grad=True)

    def render(world, colours):
        return interpolate(colours, rasterize(camera.project(world), QUAD, 10, 10, backend=backend), QUAD)

    assert torch.autograd.gradcheck(render, (world, colours), eps=1e-7, atol=1e-5)


def test_interpolate_batches_and_shared_attributes():
    screen = torch.tensor([[[0.0, 0.0, 1.0], [8.0, 0.0, 1.0], [8.0, 8.0, 1.0], [0.0, 8.0, 1.0]]]).repeat(2, 1, 1)
    screen[1, :, 2] = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fragments = rasterize(screen, QUAD, 8, 8)
    shared = torch.arange(4.0)[:, None]
    per_image = torch.stack([shared, shared * 10])
    a = interpolate(shared, fragments, QUAD)
    b = interpolate(per_image, fragments, QUAD)
    torch.testing.assert_close(b[0], a[0])
    torch.testing.assert_close(b[1], a[1] * 10)
    assert not torch.allclose(a[0], a[1])  # perspective differs between the two images
    with pytest.raises(InvertAvatarError):
        interpolate(torch.zeros(3, 4, 1), fragments, QUAD)
    with pytest.raises(InvertAvatarError):
        interpolate(shared, fragments, QUAD[:1])


def test_uv_render_covers_the_expected_texels(backend):
    uv = torch.tensor([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])
    fragments = rasterize_uv(uv, QUAD, 16, backend=backend)
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[4:12, 4:12] = True  # texel centres (i + 0.5) / 16 inside [0.25, 0.75]
    assert torch.equal(fragments.mask[0], expected)
    texel_uv = interpolate(uv, fragments, QUAD)[0]
    rows, cols = torch.nonzero(expected, as_tuple=True)
    torch.testing.assert_close(texel_uv[rows, cols, 0], (cols + 0.5) / 16)
    torch.testing.assert_close(texel_uv[rows, cols, 1], 1 - (rows + 0.5) / 16)


def test_uv_render_row_zero_is_v_one(backend):
    top = torch.tensor([[0.0, 0.6], [1.0, 0.6], [0.5, 1.0]])  # a triangle near v = 1
    fragments = rasterize_uv(top, torch.tensor([[0, 1, 2]]), 20, backend=backend)
    rows = torch.nonzero(fragments.mask[0], as_tuple=True)[0]
    assert rows.numel() > 0 and int(rows.max()) < 8 and int(rows.min()) == 0


def test_vertex_normals_point_outwards():
    # An octahedron with counter-clockwise (outward) faces.
    verts = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    faces = torch.tensor([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    normals = vertex_normals(verts, faces)
    torch.testing.assert_close(normals, verts)
    batched = vertex_normals(torch.stack([verts, verts * 2]), faces)
    torch.testing.assert_close(batched[1], verts)


def test_sample_image_uses_pixel_centres():
    image = torch.arange(12.0).reshape(3, 4, 1)  # value = 4 * row + col
    pixels = torch.tensor([[0.5, 0.5], [3.5, 2.5], [1.0, 0.5], [2.5, 1.0]])
    values = sample_image(image, pixels)[:, 0]
    torch.testing.assert_close(values, torch.tensor([0.0, 11.0, 0.5, 4.0]))
    outside = sample_image(image, torch.tensor([[-3.0, 1.0]]))
    assert outside.item() == 0.0
    assert sample_image(image, torch.tensor([[-3.0, 1.5]]), padding="border").item() == pytest.approx(4.0, abs=1e-5)
    batched = sample_image(torch.stack([image, image + 1]), pixels[None].expand(2, -1, -1))
    torch.testing.assert_close(batched[1] - batched[0], torch.ones(4, 1))
    with pytest.raises(InvertAvatarError):
        sample_image(torch.zeros(3, 4, 1, dtype=torch.uint8), pixels)


def test_sample_image_gradients():
    image = torch.rand(5, 6, 2, dtype=torch.float64, requires_grad=True)
    pixels = torch.tensor([[1.3, 2.2], [4.1, 0.9], [2.6, 3.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sample_image, (image, pixels))


def test_interpolation_keeps_float64(backend):
    screen = torch.tensor([[[0.0, 0.0, 1.0], [8.0, 0.0, 1.0], [8.0, 8.0, 1.0]]], dtype=torch.float64)
    fragments = rasterize(screen, np.array([[0, 1, 2]]), 8, 8, backend=backend)
    assert fragments.bary.dtype == torch.float64 and fragments.depth.dtype == torch.float64
