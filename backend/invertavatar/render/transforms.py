"""Rotation helpers in PyTorch, differentiable and batched: axis-angle and unit quaternions [w, x, y, z] to matrices.

Every function accepts any leading batch shape (``(..., 3)`` or ``(..., 4)``) and returns ``(..., 3, 3)``.
"""

from __future__ import annotations

import torch

from ..errors import InvertAvatarError


def _check_last_dim(x: torch.Tensor, size: int, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[-1] != size:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvertAvatarError(
            "invalid_render_input",
            f"{name} must be a tensor of shape (..., {size}), got {shape}.",
            f"Pass a torch tensor whose last dimension has {size} entries.",
        )


def skew(v: torch.Tensor) -> torch.Tensor:
    """The cross-product matrix ``[v]x`` of vectors ``(..., 3)``: ``skew(a) @ b == cross(a, b)``."""
    _check_last_dim(v, 3, "vector")
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    rows = (
        torch.stack([zero, -z, y], -1),
        torch.stack([z, zero, -x], -1),
        torch.stack([-y, x, zero], -1),
    )
    return torch.stack(rows, -2)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors ``(..., 3)`` (direction = axis, length = angle in radians).

    Rodrigues' formula with Taylor expansions of sin(θ)/θ and (1 − cos θ)/θ² near θ = 0, so the value and the
    gradient stay finite at the identity (trackers start there).
    """
    _check_last_dim(axis_angle, 3, "axis_angle")
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < 1e-8
    # Keep the sqrt argument away from zero in the branch that is not taken, or its NaN gradient leaks through where().
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta_sq), theta_sq))
    a = torch.where(small, 1.0 - theta_sq / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from quaternions ``(..., 4)`` in ``[w, x, y, z]`` order (normalised here first)."""
    _check_last_dim(quaternion, 4, "quaternion")
    norm = quaternion.norm(dim=-1, keepdim=True)
    if bool((norm < 1e-12).any()):
        raise InvertAvatarError(
            "invalid_render_input",
            "A rotation quaternion has zero length.",
            "Use [1, 0, 0, 0] for no rotation.",
        )
    w, x, y, z = (quaternion / norm).unbind(-1)
    rows = (
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    )
    return torch.stack(rows, -2)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``[w, x, y, z]`` (with w >= 0) from rotation matrices ``(..., 3, 3)``.

    Uses the numerically best of the four standard formulas per matrix (the one with the largest diagonal term).
    """
    if not isinstance(matrix, torch.Tensor) or matrix.ndim < 2 or tuple(matrix.shape[-2:]) != (3, 3):
        raise InvertAvatarError(
            "invalid_render_input",
            "matrix must be a tensor of shape (..., 3, 3).",
            "Pass rotation matrices, e.g. from quaternion_to_matrix.",
        )
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidates, each scaled by 4*|component|; pick per matrix the one with the largest component.
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                         m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                         m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                         m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                         1 - m00 - m11 + m22], -1),
        ],
        -2,
    )
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1)
    chosen = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = chosen / chosen.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)
