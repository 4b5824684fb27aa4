"""Pinhole cameras in the OpenCV convention (x right, y down, z forward), batched and differentiable.

``x_cam = R @ x_world + t``; ``K`` maps camera space to pixels. Pixel coordinates are continuous with pixel
``(col, row)`` covering ``[col, col + 1) × [row, row + 1)``, so its centre is at ``(col + 0.5, row + 0.5)`` and the
image centre of a W×H image is ``(W / 2, H / 2)``. (OpenCV itself puts pixel centres on integers: add 0.5 to its
``cx``, ``cy`` when importing an OpenCV calibration.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvertAvatarError

#: Depths smaller than this (metres) are clamped before dividing, so projection never produces inf/NaN.
MIN_DEPTH = 1e-9


def _bad(message: str, hint: str) -> InvertAvatarError:
    return InvertAvatarError("invalid_render_input", message, hint)


def make_intrinsics(focal_px: torch.Tensor | float, width: int, height: int) -> torch.Tensor:
    """``K`` with square pixels, focal length ``focal_px`` (scalar or (B,)) and the principal point at the centre.

    Differentiable w.r.t. a tensor ``focal_px`` (the tracker estimates it). Returns (3,3) or (B,3,3).
    """
    f = torch.as_tensor(focal_px, dtype=torch.get_default_dtype()) if not torch.is_tensor(focal_px) else focal_px
    zero, one = torch.zeros_like(f), torch.ones_like(f)
    rows = (
        torch.stack([f, zero, zero + width / 2.0], -1),
        torch.stack([zero, f, zero + height / 2.0], -1),
        torch.stack([zero, zero, one], -1),
    )
    return torch.stack(rows, -2)


@dataclass
class Camera:
    """A pinhole camera, or a batch of them.

    ``K`` (3,3) or (B,3,3) intrinsics in pixels, ``R`` (3,3) or (B,3,3) and ``t`` (3,) or (B,3) world → camera,
    ``width`` and ``height`` the image size in pixels. An unbatched camera (or a batch of one) is shared by every mesh
    of a batch; a batch of B cameras views a batch of B meshes (or one mesh B times).
    """

    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        for name, value, tail in (("K", self.K, (3, 3)), ("R", self.R, (3, 3)), ("t", self.t, (3,))):
            if not torch.is_tensor(value) or tuple(value.shape[-len(tail):]) != tail or value.ndim > len(tail) + 1:
                shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
                raise _bad(f"Camera.{name} must have shape {tail} or (B, {', '.join(map(str, tail))}), got {shape}.",
                           "Build cameras with Camera.frontal or Camera.look_at, or pass torch tensors.")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise _bad(f"Camera size must be positive, got {self.width}×{self.height}.",
                       "Give the image width and height in pixels.")
        self.width, self.height = int(self.width), int(self.height)
        sizes = {int(v.shape[0]) for v, base in ((self.K, 2), (self.R, 2), (self.t, 1)) if v.ndim == base + 1}
        if len(sizes) > 1:
            raise _bad(f"Camera K, R and t have different batch sizes {sorted(sizes)}.",
                       "Give every batched camera tensor the same leading size B.")

    # ----------------------------------------------------------------- construction
    @classmethod
    def frontal(cls, focal_px: float, width: int, height: int, distance: float,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> "Camera":
        """A camera on the +Z axis at ``distance`` metres, looking back at the origin (the face), +Y up in the image."""
        if distance <= 0:
            raise _bad(f"Camera distance must be positive, got {distance}.", "Use the distance in metres, e.g. 0.6.")
        K = make_intrinsics(torch.tensor(float(focal_px), dtype=dtype, device=device), width, height)
        R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype, device=device))
        t = torch.tensor([0.0, 0.0, float(distance)], dtype=dtype, device=device)
        return cls(K, R, t, width, height)

    @classmethod
    def look_at(cls, eye: torch.Tensor, target: torch.Tensor, focal_px: float | torch.Tensor, width: int,
                height: int, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> "Camera":
        """A camera at ``eye`` ((3,) or (B,3)) looking at ``target``, with world ``up`` pointing up in the image."""
        eye = torch.as_tensor(eye)
        target = torch.as_tensor(target, dtype=eye.dtype, device=eye.device)
        forward = target - eye
        if bool((forward.norm(dim=-1) < 1e-12).any()):
            raise _bad("Camera.look_at needs the eye and the target at different places.", "Move the eye back.")
        z = forward / forward.norm(dim=-1, keepdim=True)
        up_t = torch.tensor(up, dtype=eye.dtype, device=eye.device).expand_as(z)
        x = torch.linalg.cross(z, up_t, dim=-1)
        if bool((x.norm(dim=-1) < 1e-9).any()):
            raise _bad("Camera.look_at: the view direction is parallel to `up`.", "Pass a different `up` vector.")
        x = x / x.norm(dim=-1, keepdim=True)
        y = torch.linalg.cross(z, x, dim=-1)
        R = torch.stack([x, y, z], -2)
        t = -(R @ eye[..., None])[..., 0]
        focal = focal_px if torch.is_tensor(focal_px) else torch.tensor(float(focal_px), dtype=eye.dtype,
                                                                         device=eye.device)
        K = make_intrinsics(focal, width, height)
        if R.ndim == 3 and K.ndim == 2:
            K = K.expand(R.shape[0], 3, 3)
        return cls(K, R, t, width, height)

    # ----------------------------------------------------------------- properties
    @property
    def batch_size(self) -> int | None:
        """B for a batch of cameras, ``None`` for a single camera."""
        for value, base in ((self.K, 2), (self.R, 2), (self.t, 1)):
            if value.ndim == base + 1:
                return int(value.shape[0])
        return None

    @property
    def center(self) -> torch.Tensor:
        """Camera position in world space, (3,) or (B,3): ``-R^T t``."""
        return -(self.R.transpose(-1, -2) @ self.t[..., None])[..., 0]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Camera":
        """A copy on another device and/or dtype."""
        return Camera(self.K.to(device=device, dtype=dtype), self.R.to(device=device, dtype=dtype),
                      self.t.to(device=device, dtype=dtype), self.width, self.height)

    def __getitem__(self, index: int) -> "Camera":
        """Camera ``index`` of a batch (an unbatched camera returns itself)."""
        if self.batch_size is None:
            return self

        def pick(v: torch.Tensor, base: int) -> torch.Tensor:
            return v[index] if v.ndim == base + 1 else v

        return Camera(pick(self.K, 2), pick(self.R, 2), pick(self.t, 1), self.width, self.height)

    # ----------------------------------------------------------------- projection
    def _batched(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not torch.is_tensor(points) or points.ndim != 3 or points.shape[-1] != 3:
            shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
            raise _bad(f"Points must have shape (B, V, 3), got {shape}.", "Add a batch dimension with points[None].")
        b_cam = self.batch_size
        if b_cam is not None and points.shape[0] not in (1, b_cam):
            raise _bad(f"{points.shape[0]} meshes but {b_cam} cameras.",
                       "Use one camera, one mesh, or the same number of each.")
        K = self.K if self.K.ndim == 3 else self.K[None]
        R = self.R if self.R.ndim == 3 else self.R[None]
        t = self.t if self.t.ndim == 2 else self.t[None]
        return K, R, t

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """Camera-space coordinates ``R @ x + t`` of points (B,V,3)."""
        _, R, t = self._batched(points)
        return points @ R.transpose(-1, -2) + t[:, None, :]

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Screen positions (B,V,3) of world points (B,V,3): pixel x, pixel y (centres at +0.5) and camera depth z.

        Differentiable w.r.t. ``K``, ``R``, ``t`` and the points. Points at or behind the camera keep their (≤ 0)
        depth so the rasterizer can skip their triangles; their pixel coordinates are finite but meaningless.
        """
        K, _, _ = self._batched(points)
        cam = self.world_to_camera(points)
        z = cam[..., 2:3]
        z_safe = torch.where(z.abs() < MIN_DEPTH, torch.full_like(z, MIN_DEPTH), z)
        pix = (cam / z_safe) @ K.transpose(-1, -2)
        return torch.cat([pix[..., :2], z], -1)
