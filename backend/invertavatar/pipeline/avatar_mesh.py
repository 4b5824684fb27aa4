"""The bundle's mesh arrays for a fitted identity: personalised neutral, ARKit deltas, atlas UVs and the rig."""

from __future__ import annotations

import numpy as np
import torch

from ..headmodel import ARKIT_NAMES, HeadModel
from ..headmodel.rig import build_rig
from ..texture import atlas_uvs


def personalised_vertices(model: HeadModel, identity: np.ndarray) -> np.ndarray:
    """Neutral vertices (V, 3) of the fitted identity."""
    with torch.no_grad():
        return model.evaluate(torch.from_numpy(np.asarray(identity, np.float32))[None])[0].numpy()


def mesh_arrays(model: HeadModel, identity: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays of ``mesh.npz`` (docs/bundle-format.md) for ``identity``."""
    vertices = personalised_vertices(model, identity)
    deltas = model.arkit_deltas(identity)
    available = model.arkit.available
    jaw = ARKIT_NAMES.index("jawOpen")
    rig = build_rig(vertices, model.regions, deltas[jaw] if available[jaw] else None)
    uv, face_uv = atlas_uvs(model)
    return {
        "vertices": vertices.astype(np.float32),
        "faces": model.faces.astype(np.int32),
        "uv": uv,
        "face_uv": face_uv,
        "face_material": model.face_material.astype(np.int16),
        "material_names": np.array(model.material_names),
        "expression_names": np.array(ARKIT_NAMES),
        "expression_deltas": deltas.astype(np.float32),
        "expression_available": available,
        "bone_names": np.array(rig.names),
        "bone_parents": np.array(rig.parents, np.int32),
        "bone_heads": rig.heads.astype(np.float32),
        "bone_tails": rig.tails.astype(np.float32),
        "vertex_weights": rig.weights.astype(np.float32),
    }
