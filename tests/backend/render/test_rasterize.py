"""Visibility and barycentrics against a brute-force reference, backend agreement, watertightness, culling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.render import Camera, choose_backend, rasterize
from invertavatar.render import raster_gl

H, W = 20, 24


def _compare(fragments, reference, tolerance_px=0.02):
    """Exact agreement wherever the reference says the pixel is unambiguous; return the ambiguous count."""
    ref_id, ref_depth, ref_bary, margin = reference
    tri_id = fragments.tri_id[0].numpy()
    clear = margin > tolerance_px
    assert clear.mean() > 0.9, "test mesh too ambiguous to be a meaningful check"
    np.testing.assert_array_equal(tri_id[clear], ref_id[clear])
    both = clear & (ref_id >= 0)
    np.testing.assert_allclose(fragments.depth[0].double().numpy()[both], ref_depth[both], rtol=1e-5)
    np.testing.assert_allclose(fragments.bary[0].double().numpy()[both], ref_bary[both], atol=2e-5)
    return int((~clear).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference_on_random_overlapping_triangles(backend, reference_rasterize, make_random_triangles,
                                                           seed):
    rng = np.random.default_rng(seed)
    verts, tris = make_random_triangles(rng, 16, H, W)
    reference = reference_rasterize(verts, tris, H, W)
    assert (reference[0] >= 0).mean() > 0.4 and len(np.unique(reference[0])) > 6  # overlaps really happen
    fragments = rasterize(torch.from_numpy(verts).float()[None], torch.from_numpy(tris), H, W, backend=backend)
    assert fragments.tri_id.shape == (1, H, W) and fragments.tri_id.dtype == torch.int64
    assert fragments.bary.shape == (1, H, W, 3) and fragments.depth.shape == (1, H, W)
    _compare(fragments, reference)
    empty = fragments.tri_id[0] < 0
    assert torch.all(fragments.bary[0][empty] == 0) and torch.all(fragments.depth[0][empty] == 0)


def test_backface_culling_and_near_plane(backend, reference_rasterize, make_random_triangles):
    rng = np.random.default_rng(7)
    verts, tris = make_random_triangles(rng, 12, H, W)
    verts[tris[3], 2] = [1.5, -0.5, 2.0]  # one corner behind the camera: the whole triangle is skipped
    screen = torch.from_numpy(verts).float()[None]
    reference = reference_rasterize(verts, tris, H, W, cull_backfaces=True)
    fragments = rasterize(screen, torch.from_numpy(tris), H, W, cull_backfaces=True, backend=backend)
    _compare(fragments, reference)
    areas = [(verts[j, 0] - verts[i, 0]) * (verts[k, 1] - verts[i, 1])
             - (verts[j, 1] - verts[i, 1]) * (verts[k, 0] - verts[i, 0]) for i, j, k in tris]
    drawn = set(fragments.tri_id.unique().tolist()) - {-1}
    assert 3 not in drawn
    assert all(areas[t] < 0 for t in drawn)  # only counter-clockwise-on-screen (front-facing) triangles survive
    unculled = set(rasterize(screen, torch.from_numpy(tris), H, W, backend=backend).tri_id.unique().tolist())
    assert any(areas[t] > 0 for t in unculled - {-1})


def test_front_facing_means_counter_clockwise_seen_from_the_camera(backend):
    # World triangle counter-clockwise when seen from +Z (normal +Z, towards the frontal camera).
    world = torch.tensor([[[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.0, 0.1, 0.0]]])
    camera = Camera.frontal(40.0, W, H, 1.0)
    tris = torch.tensor([[0, 1, 2]])
    seen = rasterize(camera.project(world), tris, H, W, cull_backfaces=True, backend=backend)
    hidden = rasterize(camera.project(world), tris.flip(1), H, W, cull_backfaces=True, backend=backend)
    assert seen.mask.sum() > 10 and hidden.mask.sum() == 0


def test_watertight_on_shared_edges_through_pixel_centres(backend):
    # A grid whose vertices sit on pixel centres: many edges pass exactly through sample points.
    gx, gy = np.meshgrid(np.arange(-1, W + 4, 3) + 0.5, np.arange(-1, H + 4, 3) + 0.5)
    nx = gx.shape[1]
    verts = np.stack([gx.ravel(), gy.ravel(), 2.0 + 0.01 * gx.ravel()], 1)
    tris = []
    for r in range(gx.shape[0] - 1):
        for c in range(nx - 1):
            a, b, d, e = r * nx + c, r * nx + c + 1, (r + 1) * nx + c, (r + 1) * nx + c + 1
            tris += [[a, b, e], [a, e, d]] if (r + c) % 2 else [[a, b, d], [b, e, d]]
    fragments = rasterize(torch.tensor(verts, dtype=torch.float32)[None], torch.tensor(tris), H, W,
                          backend=backend)
    assert bool(fragments.mask.all()), "a pixel centre on a shared edge was missed"


def test_batched_cameras_render_like_single_ones(backend):
    rng = np.random.default_rng(3)
    world = torch.from_numpy(rng.uniform(-0.1, 0.1, size=(30, 3))).float()
    tris = torch.from_numpy(rng.integers(0, 30, size=(20, 3)))
    eye = torch.tensor([[0.0, 0.0, 0.7], [0.3, 0.1, 0.5]])
    cameras = Camera.look_at(eye, torch.zeros(2, 3), 30.0, W, H)
    batched = rasterize(cameras.project(world[None]), tris, H, W, backend=backend)
    assert batched.tri_id.shape == (2, H, W)
    for b in range(2):
        single = rasterize(cameras[b].project(world[None]), tris, H, W, backend=backend)
        assert torch.equal(batched.tri_id[b], single.tri_id[0])
        torch.testing.assert_close(batched.bary[b], single.bary[0])
    assert not torch.equal(batched.tri_id[0], batched.tri_id[1])


def test_backends_agree_on_the_ict_head(ict_model, cpu_backends):
    if "opengl" not in cpu_backends:
        pytest.skip("OpenGL rasterizer not available on this machine (no EGL context)")
    camera = Camera.frontal(220.0, 128, 160, 0.6)
    verts = torch.from_numpy(ict_model.vertices).float()[None]
    screen = camera.project(verts)
    out = {name: rasterize(screen, ict_model.triangles, 160, 128, backend=name) for name in ("torch", "opengl")}
    a, b = out["torch"], out["opengl"]
    assert a.mask.float().mean() > 0.3
    differ = a.tri_id != b.tri_id
    # Differences are sub-pixel edge decisions (OpenGL snaps vertices to 1/256 px), never whole regions.
    assert differ.float().mean() < 0.01
    assert (a.mask != b.mask).sum() <= 20
    both = differ & a.mask & b.mask
    assert torch.all((a.depth[both] - b.depth[both]).abs() < 2e-3)  # neighbouring triangles of one surface


def test_choose_backend_environment_and_fallback(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("INVERTAVATAR_RASTERIZER", "torch")
    assert choose_backend(None, cpu) == "torch"
    monkeypatch.setattr(raster_gl, "is_available", lambda: False)
    assert choose_backend("opengl", cpu) == "torch"  # falls back instead of failing
    monkeypatch.delenv("INVERTAVATAR_RASTERIZER")
    assert choose_backend(None, cpu) == "torch"
    assert choose_backend("nvdiffrast", cpu) == "torch"
    with pytest.raises(InvertAvatarError) as err:
        choose_backend("vulkan", cpu)
    assert err.value.code == "invalid_setting" and "torch" in err.value.hint


@pytest.mark.parametrize("bad", [torch.zeros(3, 3), torch.zeros(1, 3, 2), np.zeros((1, 3, 3))])
def test_bad_screen_vertices_are_refused(bad):
    with pytest.raises(InvertAvatarError) as err:
        rasterize(bad, torch.tensor([[0, 1, 2]]), 4, 4)
    assert err.value.code == "invalid_render_input" and err.value.hint


@pytest.mark.parametrize("tris", [torch.tensor([[0, 1, 3]]), torch.tensor([[0, 1]]), torch.tensor([[0.0, 1, 2]])])
def test_bad_triangles_are_refused(tris):
    with pytest.raises(InvertAvatarError) as err:
        rasterize(torch.zeros(1, 3, 3), tris, 4, 4)
    assert err.value.code == "invalid_render_input"


def test_empty_image_when_everything_is_behind_the_camera(backend):
    screen = torch.tensor([[[1.0, 1.0, -1.0], [5.0, 1.0, -1.0], [1.0, 5.0, -1.0]]])
    fragments = rasterize(screen, torch.tensor([[0, 1, 2]]), 8, 8, backend=backend)
    assert not fragments.mask.any()


def test_oversized_request_is_refused_before_allocating():
    with pytest.raises(InvertAvatarError) as err:
        rasterize(torch.zeros(4, 3, 3), torch.tensor([[0, 1, 2]]), 8192, 8192)
    assert err.value.code == "image_too_large"


@pytest.mark.parametrize("depth, gap", [(0.6, 1e-4), (1000.0, 2e-3), (0.05, 1e-5)])
def test_nearly_coincident_layers_resolve_to_the_nearer(backend, depth, gap):
    # Two overlapping triangles a fraction of a millimetre apart, plus a far one that sets the depth range.
    screen = torch.tensor([[[-4.0, -4.0, depth + gap], [30.0, -4.0, depth + gap], [-4.0, 30.0, depth + gap],
                            [-4.0, -4.0, depth], [30.0, -4.0, depth], [-4.0, 30.0, depth],
                            [20.0, 20.0, depth * 3], [23.0, 20.0, depth * 3], [20.0, 23.0, depth * 3]]],
                          dtype=torch.float64)
    for order in ([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[3, 4, 5], [0, 1, 2], [6, 7, 8]]):
        fragments = rasterize(screen, torch.tensor(order), 16, 16, backend=backend)
        near_index = order.index([3, 4, 5])
        covered = fragments.mask[0]
        assert covered.sum() > 100 and torch.all(fragments.tri_id[0][covered] == near_index)


def _rasterize_in_child(queue) -> None:
    screen = torch.tensor([[[0.0, 0.0, 1.0], [8.0, 0.0, 1.0], [0.0, 8.0, 1.0]]])
    queue.put(int(rasterize(screen, torch.tensor([[0, 1, 2]]), 8, 8, backend="opengl").mask.sum()))


def test_forked_child_falls_back_instead_of_hanging(cpu_backends):
    # A server that forks workers after using OpenGL must not hang in Mesa: the child switches to torch.
    if "opengl" not in cpu_backends:
        pytest.skip("OpenGL rasterizer not available on this machine (no EGL context)")
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_rasterize_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("rasterizing in a forked child hung")
    assert child.exitcode == 0 and queue.get(timeout=5) > 20
