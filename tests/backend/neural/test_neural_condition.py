"""Mesh condition from the ICT head model through invertavatar.render, camera labels, and driving an avatar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.neural.config import tiny_config
from invertavatar.neural.prior.animate import AvatarDriver
from invertavatar.neural.prior.cameras import camera_label, orbit_camera
from invertavatar.neural.prior.condition import ICT_PLANE_SCALE, IctCondition, plane_to_condition_pixels
from invertavatar.neural.prior.face_plane import hole_masks
from invertavatar.neural.prior.generator import Next3DGenerator
from invertavatar.render import Camera

torch.set_num_threads(1)


def test_condition_pixels_are_aligned_with_the_face_window():
    cfg = tiny_config()
    r0, r1, c0, c1 = cfg.face_window
    res = cfg.plane_resolution
    # plane-0 pixel centre (row r0 + 0.25, col c0 + 0.25) is the centre of condition pixel (0, 0)
    x = ((c0 + 0.25) / res - 0.5) * cfg.box_warp
    y = ((r0 + 0.25) / res - 0.5) * cfg.box_warp
    screen = plane_to_condition_pixels(torch.tensor([[[x, y, 0.1]]]), cfg)
    np.testing.assert_allclose(screen[0, 0, :2].numpy(), [0.5, 0.5], atol=1e-5)
    assert screen[0, 0, 2] < plane_to_condition_pixels(torch.tensor([[[x, y, 0.0]]]), cfg)[0, 0, 2]


@pytest.fixture(scope="module")
def condition(ict_model):
    return IctCondition(ict_model, tiny_config())


def expression(model, **weights) -> torch.Tensor:
    e = torch.zeros(1, model.n_expression)
    for name, value in weights.items():
        e[0, list(model.expression_names).index(name)] = value
    return e


def test_ict_condition_layout_and_open_mouth_hole(ict_model, condition):
    cfg = condition.config
    neutral = condition(ict_model.evaluate(expression=expression(ict_model)))
    opened = condition(ict_model.evaluate(expression=expression(ict_model, jawOpen=1.0)))
    assert neutral.shape == (1, cfg.plane_resolution, cfg.plane_resolution, 3)
    alpha = neutral[..., 2]
    assert set(alpha.unique().tolist()) <= {0.0, 1.0} and 0.2 < alpha.mean() < 0.7
    assert neutral[..., :2].abs().max() <= 1.0
    assert (neutral[..., :2][alpha == 0] == 0).all()
    # Plane rows follow +y (up), so the chin is in the top rows; the open mouth is an enclosed hole at rows
    # >= the mouth row, which the generator re-synthesises (inject alpha 1).
    rows = torch.nonzero(alpha[0]).float()[:, 0]
    assert rows.min() < cfg.plane_resolution * 0.35 and rows.max() > cfg.plane_resolution * 0.85
    full_n, _ = hole_masks(alpha, cfg.mouth_row)
    full_o, inject_o = hole_masks(opened[..., 2], cfg.mouth_row)
    hole_n = (full_n - alpha).sum().item()
    hole_o = (full_o - opened[..., 2]).sum().item()
    assert hole_o > hole_n + 10
    mouth = torch.nonzero(inject_o[0] - opened[0, ..., 2]).float()
    assert len(mouth) == hole_o and mouth[:, 0].min() >= cfg.mouth_row
    chin_rows = torch.nonzero(alpha[0].sum(dim=1) > 0)[:, 0]
    assert mouth[:, 0].mean() < cfg.plane_resolution / 2 and chin_rows.min() < mouth[:, 0].min()


def test_frontal_camera_label_matches_orbit_camera(condition):
    c = condition
    distance_units = 2.7
    target = c.plane_target
    # a backend camera on +Z whose centre maps to pivot (target + (0, 0, 2.7)) in the prior frame
    metres = (distance_units - target[2]) / ICT_PLANE_SCALE + c.centre[2]
    cam = Camera.frontal(focal_px=4.2647 * 64, width=64, height=64, distance=metres)
    cam = Camera(cam.K, cam.R, cam.t + torch.tensor(cam.R.numpy() @ (-np.array([c.centre[0], c.centre[1], 0.0])),
                                                   dtype=torch.float32), 64, 64)
    label = c.camera_label(cam)
    expected = camera_label(orbit_camera(pivot=tuple(target)))
    np.testing.assert_allclose(label.numpy(), expected.numpy(), atol=1e-5)


def test_orbit_camera_is_a_look_at_with_image_down_along_y():
    pose = orbit_camera(yaw=0.4, pitch=0.2).double()
    r = pose[:3, :3]
    assert torch.allclose(r.T @ r, torch.eye(3, dtype=torch.float64), atol=1e-6)
    pivot = torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64)
    forward = (pivot - pose[:3, 3]) / (pivot - pose[:3, 3]).norm()
    assert torch.allclose(r[:, 2], forward, atol=1e-6)
    assert r[1, 1] < -0.9 and pose[1, 3] > 0  # image down ~ -y; pitching up moves the camera to +y
    assert torch.linalg.det(r) > 0.999
    assert torch.allclose(orbit_camera()[:3, :3], torch.diag(torch.tensor([1.0, -1.0, -1.0])))


def test_driver_renders_expressions_from_arkit(ict_model):
    torch.manual_seed(2)
    gen = Next3DGenerator(tiny_config()).eval()
    ws = gen.mapping(torch.randn(1, gen.config.z_dim), camera_label(orbit_camera())[None]).detach()
    driver = AvatarDriver(gen, ict_model, ws)
    cam = Camera.frontal(focal_px=4.2647 * 64, width=64, height=64, distance=1.45)
    neutral = driver.frame(cam)
    arkit = np.zeros(52, np.float32)
    arkit[ARKIT_NAMES.index("jawOpen")] = 1.0
    opened = driver.frame(cam, arkit=arkit)
    again = driver.frame(cam, arkit=arkit)
    size = gen.config.output_resolution
    assert opened.image.shape == (1, 3, size, size) and torch.isfinite(opened.image).all()
    assert torch.equal(opened.image, again.image)
    assert not torch.equal(neutral.image, opened.image)
    assert torch.equal(neutral.planes[:, 1:], opened.planes[:, 1:])
    turned = driver.frame(cam, head_rotation=np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]) @ np.eye(3) * 1.0)
    assert not torch.allclose(turned.image, neutral.image)


# ---------------------------------------------------------------- official (FaceVerse) condition
def fake_faceverse(ict_model):
    """A FaceVerse-shaped stand-in (per-vertex UVs, eyeball regions) built from the ICT mesh: the real file is
    user-licensed and absent here. Only the chain's arithmetic is checked with it."""
    from types import SimpleNamespace

    from invertavatar.neural.prior.condition_faceverse import FaceverseCondition

    uv = np.zeros((ict_model.n_vertices, 2), np.float32)
    for k in range(3):
        uv[ict_model.triangles[:, k]] = np.clip(ict_model.uv[ict_model.triangle_uv[:, k]], 0, 1)
    model = SimpleNamespace(name="faceverse-v3", n_vertices=ict_model.n_vertices, triangles=ict_model.triangles,
                            uv=uv, regions={"eyeball_left": ict_model.regions["eyeball_left"],
                                            "eyeball_right": ict_model.regions["eyeball_right"]})
    fv2fl = np.eye(4)
    fv2fl[:3, :3] = 0.0867 * np.diag([1.0, -1.0, -1.0])  # like the released file: scale ~0.0867, y and z flipped
    fv2fl[:3, 3] = [0.0, 0.0867 - 0.005 - 0.011, 0.0]
    mask = np.zeros(ict_model.n_vertices)
    mask[ict_model.regions["narrow_face"]] = 1.0
    return model, fv2fl, mask, FaceverseCondition(model, fv2fl, mask)


def test_faceverse_condition_follows_the_reference_chain(ict_model):
    from invertavatar.neural.prior.condition_faceverse import expand_face_uv

    model, fv2fl, mask, cond = fake_faceverse(ict_model)
    v = torch.from_numpy(ict_model.vertices[None].astype(np.float64))
    # the reference chain, restated step by step: model space, fv2fl, orthographic scale/shift, 512 render, crop
    raw = ict_model.vertices.astype(np.float64) * 100.0
    vs = raw * 0.1 * np.array([1.0, -1.0, -1.0]) + np.array([0.0, 1.0, 0.0])
    fl = vs @ fv2fl[:3, :3].T + fv2fl[:3, 3]
    t = (fl + np.array([0.0, 0.005, 0.0])) * 5.0
    expected_x = (1.0 - t[:, 0]) * 256.0 - 128.0  # PyTorch3D NDC +x is left: columns mirrored
    expected_y = (1.0 + t[:, 1]) * 256.0 - 114.0
    screen = plane_to_condition_pixels(cond.to_plane_space(v), cond.config, mirror_x=True)[0].numpy()
    np.testing.assert_allclose(screen[:, 0], expected_x, atol=1e-6)
    np.testing.assert_allclose(screen[:, 1], expected_y, atol=1e-6)
    # UV expansion of the face box, eyeballs forced into the mask
    uv = np.array([[0.5, 0.5], [0.3, 0.4], [0.1, 0.5], [0.5, 0.9]])
    np.testing.assert_allclose(expand_face_uv(uv), [[0.5, 0.5], [0.22, 0.36], [0.1, 0.5], [0.5, 0.9]])
    assert cond.vertex_alpha[ict_model.regions["eyeball_left"]].min() == 1.0
    image = cond(v.float())
    assert image.shape == (1, 256, 256, 3) and (image[..., 2] > 0.5).float().mean() > 0.1


@pytest.mark.parametrize("kind", ["ict", "faceverse"])
def test_camera_labels_see_what_the_backend_camera_sees(ict_model, kind):
    builder = IctCondition(ict_model, tiny_config()) if kind == "ict" else fake_faceverse(ict_model)[3]
    eye = torch.tensor([0.25, 0.1, 0.9])
    cam = Camera.look_at(eye, torch.tensor([0.0, 0.0, 0.05]), 500.0, 256, 256)
    points = torch.from_numpy(ict_model.vertices[::500].astype(np.float32))[None]
    expected = cam.project(points)[0, :, :2]
    label = builder.camera_label(cam).double()
    pose, k = label[:16].reshape(4, 4), label[16:].reshape(3, 3)
    g = builder.to_plane_space(points.double())[0]
    local = (g - pose[:3, 3]) @ pose[:3, :3]  # world -> camera
    pixels = (local @ k.T)[:, :2] / local[:, 2:3] * 256
    torch.testing.assert_close(pixels, expected.double(), atol=1e-3, rtol=1e-5)


def test_driver_needs_faceverse_files(ict_model):
    from types import SimpleNamespace

    gen = Next3DGenerator(tiny_config())
    with pytest.raises(InvertAvatarError) as err:
        AvatarDriver(gen, SimpleNamespace(name="faceverse-v3"), torch.zeros(1, gen.num_ws, 64))
    assert "condition" in err.value.message and "FaceverseCondition" in err.value.hint


def test_hole_fill_follows_the_reference_flood_from_the_corner():
    # Open background reaches the corner: only the enclosed pixel is a hole (rows >= mouth row inject).
    alpha = torch.zeros(1, 8, 8)
    alpha[:, 2:7, 2:7] = 1
    alpha[:, 5, 4] = 0
    full, inject = hole_masks(alpha, mouth_row=5)
    assert full[0, 5, 4] == 1 and full[0, 0, 0] == 0 and inject[0, 5, 4] == 1
    _, inject_high = hole_masks(alpha, mouth_row=6)
    assert inject_high[0, 5, 4] == 0
    # A covered corner floods the face instead: every empty pixel counts as a hole, as in the reference.
    covered = torch.ones(1, 8, 8)
    covered[:, 6:, 6:] = 0
    full_c, _ = hole_masks(covered, mouth_row=0)
    assert bool((full_c == 1).all())
