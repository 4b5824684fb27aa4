"""The two renderers behind one call: dispatch, refusal, expression, camera, gaze and head pose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.io.bundle import read_bundle
from invertavatar.render import Camera
from invertavatar.render.avatar import posed_vertices
from invertavatar.render.framing import portrait_camera
from invertavatar.renderers import NEURAL_STATE_FILE, default_renderer, render
from invertavatar.renderers.neural import fold_head_pose, head_pivot, neural_camera_cover

W, H = 96, 80


@pytest.fixture(scope="module")
def bundles(neural_setup):
    _, fit, neural = neural_setup
    return read_bundle(fit), read_bundle(neural)


def _camera(bundle, yaw=0.0, width=W, height=H):
    return portrait_camera(bundle.mesh["vertices"], width, height, yaw)


def _box(bundle, camera, vertex_ids, pad=3):
    """Pixel box (r0, r1, c0, c1) around vertices of the neutral head seen by ``camera``."""
    screen = camera.project(torch.from_numpy(bundle.mesh["vertices"][vertex_ids])[None])[0].numpy()
    c0, r0 = np.floor(screen[:, :2].min(0)).astype(int) - pad
    c1, r1 = np.ceil(screen[:, :2].max(0)).astype(int) + pad
    return max(r0, 0), r1, max(c0, 0), c1


def test_state_file_name_is_the_pipelines():
    from invertavatar.pipeline.neural_stage import STATE_FILE

    assert NEURAL_STATE_FILE == STATE_FILE


def test_default_renderer_follows_the_bundle(bundles):
    fit, neural = bundles
    assert default_renderer(fit) == "albedo" and default_renderer(neural) == "neural"
    assert render(fit, size=(32, 24)).renderer == "albedo"
    result = render(neural, camera=_camera(neural))
    assert result.renderer == "neural" and result.image.shape == (H, W, 3) and result.image.dtype == np.uint8


def test_fit_only_avatar_refuses_neural_with_a_hint(bundles):
    fit, _ = bundles
    with pytest.raises(InvertAvatarError) as info:
        render(fit, "neural", camera=_camera(fit))
    assert info.value.code == "no_neural_state" and "neural" in info.value.hint and "albedo" in info.value.hint
    with pytest.raises(InvertAvatarError, match="Unknown renderer"):
        render(fit, "cycles")


def test_neural_differs_from_albedo(bundles):
    _, neural = bundles
    camera = _camera(neural)
    albedo = render(neural, "albedo", camera=camera).image.astype(int)
    drawn = render(neural, "neural", camera=camera).image.astype(int)
    assert np.abs(albedo - drawn).mean() > 10


def test_neural_follows_the_expression_where_the_mouth_is(bundles, ict_model):
    _, neural = bundles
    camera = _camera(neural)
    neutral = render(neural, "neural", camera=camera).image.astype(int)
    jaw = render(neural, "neural", {"jawOpen": 1.0}, camera=camera).image.astype(int)
    again = render(neural, "neural", {"jawOpen": 1.0}, camera=camera).image.astype(int)
    assert np.array_equal(jaw, again)  # fixed ray jitter: the same request gives the same picture
    diff = np.abs(jaw - neutral).sum(-1)
    r0, r1, c0, c1 = _box(neural, camera, np.asarray(ict_model.landmarks68)[48:68], pad=8)
    mouth = diff[r0:r1, c0:c1].mean()
    top = diff[: H // 6].mean()  # above the head: the static planes, untouched by the face condition
    assert mouth > 0 and mouth > 5 * top


def test_neural_follows_the_camera_and_the_head_pose(bundles):
    _, neural = bundles
    front = render(neural, "neural", camera=_camera(neural, 0.0)).image.astype(int)
    side = render(neural, "neural", camera=_camera(neural, 40.0)).image.astype(int)
    # Random weights draw a nearly uniform picture, so the change is small, but the same camera gives no change.
    assert np.array_equal(front, render(neural, "neural", camera=_camera(neural, 0.0)).image)
    assert np.abs(front - side).mean() > 0.1
    turned = render(neural, "neural", rotation=[np.cos(0.35), 0.0, np.sin(0.35), 0.0],
                    camera=_camera(neural, 0.0)).image.astype(int)
    assert np.abs(front - turned).mean() > 0.1


def test_a_wide_camera_is_the_middle_of_its_square_cover(bundles):
    _, neural = bundles
    wide = _camera(neural, 10.0, 96, 64)
    square, (dx, dy) = neural_camera_cover(wide)
    assert (square.width, square.height, dx, dy) == (96, 96, 0, 16)
    points = torch.from_numpy(neural.mesh["vertices"][::500])[None]
    np.testing.assert_allclose(square.project(points)[0, :, :2] - torch.tensor([0.0, 16.0]),
                               wide.project(points)[0, :, :2], atol=1e-3)
    image = render(neural, "neural", camera=wide).image
    full = render(neural, "neural", camera=square).image
    assert image.shape == (64, 96, 3)
    np.testing.assert_array_equal(image, full[16:80])


def test_folding_the_head_pose_into_the_camera_sees_the_posed_head(bundles):
    _, neural = bundles
    camera = _camera(neural, 20.0)
    quat = np.array([0.95, 0.1, 0.25, -0.05])
    quat /= np.linalg.norm(quat)
    shift = np.array([0.01, -0.02, 0.03])
    arkit = np.zeros(52, np.float32)
    posed = posed_vertices(neural.mesh, arkit, quat, shift)
    canonical = posed_vertices(neural.mesh, arkit, np.array([1.0, 0, 0, 0]), np.zeros(3))
    folded = fold_head_pose(camera, quat, shift, head_pivot(neural.mesh))
    np.testing.assert_allclose(folded.project(canonical[None]), camera.project(posed[None]), atol=1e-3)


def test_gaze_turns_the_eyes(bundles, ict_model):
    fit, _ = bundles
    camera = Camera.frontal(1200.0, W * 2, H * 2, 0.6)
    ahead = render(fit, "albedo", camera=camera).image.astype(int)
    aside = render(fit, "albedo", gaze={"eye_L": [0.0, 0.5], "eye_R": [0.0, 0.5]}, camera=camera).image.astype(int)
    diff = np.abs(ahead - aside).sum(-1)
    eyes = np.concatenate([ict_model.regions["eyeball_left"], ict_model.regions["eyeball_right"]])
    r0, r1, c0, c1 = _box(fit, camera, eyes)
    assert diff[r0:r1, c0:c1].sum() > 0.9 * diff.sum() > 0  # only the eyes moved
    with pytest.raises(InvertAvatarError):
        render(fit, "albedo", gaze={"eye_L": [0.0]}, camera=camera)


def test_the_raw_neural_render_skips_the_super_resolution(bundles):
    _, neural = bundles
    camera = _camera(neural, 0.0, 64, 64)
    full = render(neural, "neural", camera=camera).image
    raw = render(neural, "neural", camera=camera, super_resolution=False).image
    fewer = render(neural, "neural", camera=camera, neural_resolution=8, super_resolution=False).image
    assert full.shape == raw.shape == fewer.shape == (64, 64, 3)
    assert not np.array_equal(full, raw) and not np.array_equal(raw, fewer)
    # 8 rays per side, upsampled: blocks of the picture vary smoothly, no finer detail than the rays.
    assert np.abs(np.diff(fewer.astype(int), axis=1)).max() <= np.abs(np.diff(raw.astype(int), axis=1)).max() + 8
