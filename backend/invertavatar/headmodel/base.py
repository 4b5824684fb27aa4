"""The head-model interface shared by ICT and FaceVerse: geometry, bases, landmarks, regions, rig, evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .arkit import ARKIT_NAMES, ArkitMap

BONE_NAMES: tuple[str, ...] = ("root", "neck", "head", "jaw", "eye_L", "eye_R")
BONE_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 2, 2)


@dataclass
class Rig:
    """Bones at rest (metres, backend axes) and per-vertex skinning weights, one column per bone."""

    heads: np.ndarray  # (6, 3)
    tails: np.ndarray  # (6, 3)
    weights: np.ndarray  # (V, 6), rows sum to 1
    names: tuple[str, ...] = BONE_NAMES
    parents: tuple[int, ...] = BONE_PARENTS


@dataclass(eq=False)  # compared and hashed by identity: models are immutable once loaded
class HeadModel:
    """A parametric head: neutral mesh, identity and expression bases, landmarks, regions and rig.

    All geometry is in metres in backend axes (+Y up, face towards +Z). ``faces`` keeps the model's polygons
    (quads with -1 padding for triangles); ``triangles`` is the same surface split into triangles and
    ``triangle_face`` maps each triangle back to its polygon (for materials and UVs).
    """

    name: str
    checksum: str
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    face_uv: np.ndarray
    face_material: np.ndarray
    material_names: tuple[str, ...]
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    expression_names: tuple[str, ...]
    landmarks68: np.ndarray
    regions: dict[str, np.ndarray]
    arkit: ArkitMap
    rig: Rig
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    _torch_cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.triangles, self.triangle_face, self.triangle_uv = split_polygons(self.faces, self.face_uv)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_identity(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def n_expression(self) -> int:
        return int(self.expression_basis.shape[0])

    def torch_tensors(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Neutral vertices and bases as float32 tensors on ``device`` (cached per device)."""
        key = str(device)
        if key not in self._torch_cache:
            self._torch_cache[key] = {
                "vertices": torch.from_numpy(np.asarray(self.vertices, np.float32)).to(device),
                "identity": torch.from_numpy(np.asarray(self.identity_basis, np.float32)).to(device),
                "expression": torch.from_numpy(np.asarray(self.expression_basis, np.float32)).to(device),
            }
        return self._torch_cache[key]

    def evaluate(self, identity: torch.Tensor | None = None, expression: torch.Tensor | None = None,
                 vertex_ids: np.ndarray | None = None) -> torch.Tensor:
        """Vertices (B, V, 3) for identity coefficients (B, I) and expression weights (B, E).

        Batched and differentiable; runs on the device of the inputs. ``vertex_ids`` restricts the result to a
        subset of vertices (cheap landmark evaluation).
        """
        ref = identity if identity is not None else expression
        device = ref.device if ref is not None else torch.device("cpu")
        tensors = self.torch_tensors(device) if vertex_ids is None else self._subset(vertex_ids, device)
        out = tensors["vertices"].unsqueeze(0)
        if identity is not None:
            out = out + torch.einsum("bi,ivc->bvc", identity, tensors["identity"])
        if expression is not None:
            out = out + torch.einsum("be,evc->bvc", expression, tensors["expression"])
        return out

    def _subset(self, vertex_ids: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """The tensors restricted to ``vertex_ids`` (cached: trackers evaluate the same landmarks every step)."""
        ids = np.asarray(vertex_ids, np.int64)
        key = (str(device), ids.tobytes())
        if key not in self._torch_cache:
            index = torch.from_numpy(ids).to(device)
            full = self.torch_tensors(device)
            self._torch_cache[key] = {"vertices": full["vertices"][index].contiguous(),
                                      "identity": full["identity"][:, index].contiguous(),
                                      "expression": full["expression"][:, index].contiguous()}
        return self._torch_cache[key]

    def arkit_deltas(self, identity: np.ndarray | None = None) -> np.ndarray:
        """(52, V, 3) vertex offsets of each ARKit shape at weight 1; zero for names the model lacks.

        Expression shapes are offsets from the neutral; they are shared across identities in both ICT and FaceVerse,
        so ``identity`` does not change them (kept in the signature for models that personalise them).
        """
        del identity
        basis = np.asarray(self.expression_basis, np.float32)
        return np.einsum("ke,evc->kvc", self.arkit.to_arkit, basis).astype(np.float32)


def split_polygons(faces: np.ndarray, face_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split quads (−1 padded triangles) into triangles: (T,3) vertex ids, (T,) polygon ids, (T,3) uv ids."""
    faces = np.asarray(faces)
    face_uv = np.asarray(face_uv)
    first = np.arange(len(faces))
    quads = np.nonzero(faces[:, 3] >= 0)[0]
    tri_a = faces[:, [0, 1, 2]]
    tri_b = faces[quads][:, [0, 2, 3]]
    uv_a = face_uv[:, [0, 1, 2]]
    uv_b = face_uv[quads][:, [0, 2, 3]]
    triangles = np.concatenate([tri_a, tri_b]).astype(np.int64)
    owners = np.concatenate([first, quads]).astype(np.int64)
    uv_tris = np.concatenate([uv_a, uv_b]).astype(np.int64)
    return triangles, owners, uv_tris


def arkit_names() -> tuple[str, ...]:
    """Apple's 52 names (re-exported for callers that only need the names)."""
    return ARKIT_NAMES
