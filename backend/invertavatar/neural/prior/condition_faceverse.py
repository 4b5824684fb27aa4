"""Mesh condition of the ``official`` configuration: FaceVerse v3.1 rendered as the reference pipeline renders it.

The chain (reference §2.5; cross-checked against the official preprocessing source for facts only):

1. FaceVerse model space of the official code = raw model units with y and z negated, times 0.1, plus 1 on y. Our
   head-model loader returns raw * 0.01 metres in raw axes, so ``vs = (10 x, -10 y + 1, -10 z)``.
2. ``fl = R vs + t`` with the 4x4 ``fv2fl_30.npy`` of the official repository (user-supplied).
3. Prior world = ``2.5 * (fl + (0, 0.005, 0))`` (orthographic scale 5 over a box of 2; the same normalisation
   makes the official camera labels), so the condition lines up with the tri-plane face window.
4. The official orthographic render keeps rows along +y like the planes but mirrors the columns (it rotates the
   mesh 180 degrees about y and renders with negative focal lengths in PyTorch3D, whose NDC +x points left).
   This is derived from those conventions, not run; ``mirror_x`` reproduces it.
5. Per-vertex UVs with the face box (0.195 < u < 0.805, 0.273 < v < 0.727) expanded 1.4x about the centre,
   ``(u, v) * 2 - 1`` without flipping v; alpha = the interpolated face mask (``v31_face_mask_new.npy``) with the
   eyeballs forced to 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.config import PriorConfig, official_config
from invertavatar.neural.prior.cameras import label_from_camera
from invertavatar.neural.prior.condition import mesh_condition

ORTHO_SHIFT = np.array([0.0, 0.005, 0.0])
WORLD_SCALE = 2.5  # orthographic scale 5 / box 2
UV_FACE_BOX = (0.195, 0.805, 0.273, 0.727)  # u_min, u_max, v_min, v_max
UV_EXPAND = 1.4
HINT = "Get fv2fl_30.npy and v31_face_mask_new.npy from the official InvertAvatar repository (data_preprocess)."


def expand_face_uv(uv: np.ndarray) -> np.ndarray:
    """The reference's 'expanded' UV layout: face-box UVs scaled 1.4x about (0.5, 0.5)."""
    uv = np.asarray(uv, np.float64).copy()
    u0, u1, v0, v1 = UV_FACE_BOX
    inside = (uv[:, 0] > u0) & (uv[:, 0] < u1) & (uv[:, 1] > v0) & (uv[:, 1] < v1)
    uv[inside] = (uv[inside] - 0.5) * UV_EXPAND + 0.5
    return uv


def load_faceverse_extras(fv2fl_path: str | Path, face_mask_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the two user-supplied arrays as plain ``.npy`` (no pickles allowed)."""
    try:
        fv2fl = np.load(fv2fl_path, allow_pickle=False)
        mask = np.load(face_mask_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvertAvatarError("missing_file", f"Cannot read the FaceVerse condition files ({exc}).", HINT) from exc
    return np.asarray(fv2fl, np.float64), np.asarray(mask, np.float64).ravel()


class FaceverseCondition:
    """Builds official-configuration mesh conditions from FaceVerse head-model vertices (metres, raw axes)."""

    def __init__(self, head_model, fv2fl: np.ndarray, face_mask: np.ndarray,
                 config: PriorConfig | None = None) -> None:
        self.model, self.config = head_model, config or official_config()
        fv2fl = np.asarray(fv2fl, np.float64)
        if fv2fl.shape != (4, 4):
            raise InvertAvatarError("bad_input", f"fv2fl must be a 4x4 matrix, got {fv2fl.shape}.", HINT)
        mask = np.asarray(face_mask, np.float64).ravel().copy()
        if mask.shape[0] != head_model.n_vertices:
            raise InvertAvatarError("bad_input", f"The face mask has {mask.shape[0]} entries for a mesh of "
                                    f"{head_model.n_vertices} vertices.", HINT)
        for name in ("eyeball_left", "eyeball_right"):
            mask[np.asarray(head_model.regions[name])] = 1.0  # eyeballs are textured (gaze)
        self.vertex_alpha = torch.from_numpy(mask.astype(np.float32))
        self.uv = torch.from_numpy(expand_face_uv(head_model.uv).astype(np.float32))
        self.triangles = np.asarray(head_model.triangles)
        # The encoders' UV unwrap (inversion/unwrap.py) reads the same per-vertex expanded UVs (reference §2.5).
        self.uv_triangles = torch.from_numpy(self.triangles)
        # Its textured triangles: the face mask averaged over the corners, binarised at 0.5 as the loaders do (an
        # approximation of the UV-space mask dense_uv_expanded_mask_onlyFace.png, which this version does not read).
        self.triangle_alpha = (self.vertex_alpha[torch.from_numpy(self.triangles)].mean(1) > 0.5).float()
        # Backend metres -> prior world as one similarity: g = scale * rotation @ v + offset.
        linear = fv2fl[:3, :3] @ np.diag([10.0, -10.0, -10.0])
        det = np.linalg.det(linear)
        if det <= 0:
            raise InvertAvatarError("bad_input", "fv2fl is not a proper similarity transform.", HINT)
        fl_scale = det ** (1.0 / 3.0)
        self.scale = WORLD_SCALE * fl_scale
        self.rotation = linear / fl_scale
        self.offset = WORLD_SCALE * (fv2fl[:3, :3] @ np.array([0.0, 1.0, 0.0]) + fv2fl[:3, 3] + ORTHO_SHIFT)

    def to_plane_space(self, vertices: torch.Tensor) -> torch.Tensor:
        """FaceVerse vertices (B, V, 3) in backend metres -> prior world."""
        a = torch.as_tensor(self.scale * self.rotation, dtype=vertices.dtype, device=vertices.device)
        b = torch.as_tensor(self.offset, dtype=vertices.dtype, device=vertices.device)
        return vertices @ a.T + b

    def __call__(self, vertices: torch.Tensor) -> torch.Tensor:
        """Condition (B, 256, 256, 3) for canonical FaceVerse vertices (no head pose; gaze already applied)."""
        return mesh_condition(self.to_plane_space(vertices), self.triangles, self.uv, self.triangles, self.config,
                              vertex_alpha=self.vertex_alpha, flip_v=False, mirror_x=True)

    def camera_label(self, camera) -> torch.Tensor:
        """25-value label of an ``invertavatar.render.Camera`` placed in the backend frame around this head."""
        return label_from_camera(camera, self.rotation, self.scale, self.offset)
