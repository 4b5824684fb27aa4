"""Cameras (OpenCV convention, pixel centres at +0.5) and rotation helpers."""

from __future__ import annotations

import math

import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.render import Camera, axis_angle_to_matrix, make_intrinsics, matrix_to_quaternion, \
    quaternion_to_matrix


def test_frontal_camera_follows_the_documented_convention():
    camera = Camera.frontal(500.0, 640, 480, 0.6)
    torch.testing.assert_close(camera.R, torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    torch.testing.assert_close(camera.t, torch.tensor([0.0, 0.0, 0.6]))
    torch.testing.assert_close(camera.center, torch.tensor([0.0, 0.0, 0.6]))
    points = torch.tensor([[[0.0, 0.0, 0.0], [0.06, 0.0, 0.0], [0.0, 0.06, 0.0], [0.0, 0.0, 0.1]]])
    screen = camera.project(points)[0]
    torch.testing.assert_close(screen[0], torch.tensor([320.0, 240.0, 0.6]))  # image centre = W/2, H/2
    torch.testing.assert_close(screen[1], torch.tensor([370.0, 240.0, 0.6]))  # subject's left (+X) → image right
    torch.testing.assert_close(screen[2], torch.tensor([320.0, 190.0, 0.6]))  # +Y up → image up
    assert screen[3, 2] == pytest.approx(0.5)  # the face looks down +Z, towards the camera


def test_look_at_matches_frontal_and_batches():
    frontal = Camera.frontal(300.0, 64, 48, 0.8)
    looked = Camera.look_at(torch.tensor([0.0, 0.0, 0.8]), torch.zeros(3), 300.0, 64, 48)
    torch.testing.assert_close(looked.R, frontal.R)
    torch.testing.assert_close(looked.t, frontal.t)
    eyes = torch.tensor([[0.0, 0.0, 0.8], [0.8, 0.0, 0.0], [0.0, 0.3, 0.5]])
    batch = Camera.look_at(eyes, torch.zeros(3, 3), 300.0, 64, 48)
    assert batch.batch_size == 3 and batch.K.shape == (3, 3, 3)
    origin = batch.project(torch.zeros(1, 1, 3))
    torch.testing.assert_close(origin[:, 0, :2], torch.tensor([[32.0, 24.0]] * 3))  # target at the centre
    torch.testing.assert_close(origin[:, 0, 2], eyes.norm(dim=-1))
    ortho = batch.R @ batch.R.transpose(1, 2)
    torch.testing.assert_close(ortho, torch.eye(3).expand(3, 3, 3))
    assert torch.allclose(torch.linalg.det(batch.R), torch.ones(3))


def test_batched_cameras_project_like_single_ones():
    eyes = torch.tensor([[0.1, 0.0, 0.7], [-0.2, 0.1, 0.6]])
    batch = Camera.look_at(eyes, torch.zeros(2, 3), 250.0, 32, 32)
    points = torch.randn(2, 5, 3) * 0.05
    projected = batch.project(points)
    for b in range(2):
        torch.testing.assert_close(projected[b], batch[b].project(points[b:b + 1])[0])
    shared = batch.project(points[:1])  # one mesh, many cameras
    torch.testing.assert_close(shared[1], batch[1].project(points[:1])[0])
    with pytest.raises(InvertAvatarError):
        batch.project(torch.zeros(3, 5, 3))


def test_projection_is_differentiable_in_camera_and_points():
    torch.manual_seed(0)
    K = make_intrinsics(torch.tensor(200.0, dtype=torch.float64), 40, 30).requires_grad_()
    aa = torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.01, 0.02, 0.7], dtype=torch.float64, requires_grad=True)
    points = (torch.randn(1, 4, 3, dtype=torch.float64) * 0.05).requires_grad_()

    def project(K, aa, t, points):
        return Camera(K, axis_angle_to_matrix(aa), t, 40, 30).project(points)

    assert torch.autograd.gradcheck(project, (K, aa, t, points))


def test_focal_length_gradient_flows_through_make_intrinsics():
    focal = torch.tensor([180.0, 220.0], dtype=torch.float64, requires_grad=True)
    K = make_intrinsics(focal, 40, 30)
    assert K.shape == (2, 3, 3)
    camera = Camera(K, torch.eye(3, dtype=torch.float64).expand(2, 3, 3), torch.tensor([[0, 0, 1.0]] * 2,
                    dtype=torch.float64), 40, 30)
    camera.project(torch.tensor([[[0.1, 0.0, 0.0]]], dtype=torch.float64))[..., 0].sum().backward()
    torch.testing.assert_close(focal.grad, torch.tensor([0.1, 0.1], dtype=torch.float64))


def test_rotation_helpers_agree_and_are_smooth_at_identity():
    axis = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    axis = axis / axis.norm()
    angle = 0.7
    R_aa = axis_angle_to_matrix(axis * angle)
    quat = torch.cat([torch.tensor([math.cos(angle / 2)], dtype=torch.float64), axis * math.sin(angle / 2)])
    torch.testing.assert_close(R_aa, quaternion_to_matrix(quat))
    torch.testing.assert_close(R_aa @ axis, axis)  # the axis is fixed
    torch.testing.assert_close(matrix_to_quaternion(R_aa), quat)
    # Rotating +Z by 90° about +Y gives +X.
    quarter = axis_angle_to_matrix(torch.tensor([0.0, math.pi / 2, 0.0], dtype=torch.float64))
    torch.testing.assert_close(quarter @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
                               torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (zero,))
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64,
                                                                        requires_grad=True),))
    assert torch.autograd.gradcheck(quaternion_to_matrix, (torch.tensor([0.9, 0.1, -0.3, 0.2], dtype=torch.float64,
                                                                        requires_grad=True),))


def test_matrix_to_quaternion_round_trips_large_rotations():
    torch.manual_seed(1)
    quats = torch.randn(50, 4, dtype=torch.float64)
    quats = quats / quats.norm(dim=-1, keepdim=True)
    quats = torch.where(quats[:, :1] < 0, -quats, quats)
    torch.testing.assert_close(matrix_to_quaternion(quaternion_to_matrix(quats)), quats)


@pytest.mark.parametrize("kwargs", [dict(K=torch.eye(2)), dict(t=torch.zeros(4)), dict(width=0)])
def test_bad_cameras_are_refused(kwargs):
    args = dict(K=torch.eye(3), R=torch.eye(3), t=torch.zeros(3), width=8, height=8)
    args.update(kwargs)
    with pytest.raises(InvertAvatarError) as err:
        Camera(**args)
    assert err.value.code == "invalid_render_input"


def test_zero_quaternion_is_refused():
    with pytest.raises(InvertAvatarError):
        quaternion_to_matrix(torch.zeros(4))
