"""Convert ICT-FaceKit's ``FaceXModel`` folder (one OBJ per shape) into our npz layout.

Layout (see the assets README): neutral mesh in centimetres, identity and expression bases as float16 vertex offsets
from the neutral, landmark and fitting vertex lists from ``vertex_indices.json``, and the model's vertex ranges per
region. A folder with only some shape OBJs converts what is there (used by tests on the offline ``raw/`` copy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InvertAvatarError

# Vertex ranges [first, last] of the parts of ICT Face Model Light, as documented by ICT-FaceKit (FaceXModel README).
ICT_REGIONS: tuple[tuple[str, int, int], ...] = (
    ("face", 0, 9408), ("head_and_neck", 9409, 11247), ("mouth_socket", 11248, 13293),
    ("eye_socket_left", 13294, 13677), ("eye_socket_right", 13678, 14061), ("gums_and_tongue", 14062, 17038),
    ("teeth", 17039, 21450), ("eyeball_left", 21451, 23020), ("eyeball_right", 23021, 24590),
    ("lacrimal_fluid_left", 24591, 24794), ("lacrimal_fluid_right", 24795, 24998),
    ("eye_blend_left", 24999, 25022), ("eye_blend_right", 25023, 25046),
    ("eye_occlusion_left", 25047, 25198), ("eye_occlusion_right", 25199, 25350),
    ("eyelashes_left", 25351, 26034), ("eyelashes_right", 26035, 26718), ("narrow_face", 0, 6705),
)
N_IDENTITIES = 100


def read_obj_vertices(path: Path) -> np.ndarray:
    """Vertex positions (V, 3) float32 of an OBJ file."""
    rows = [line[2:] for line in path.read_text().splitlines() if line.startswith("v ")]
    if not rows:
        raise InvertAvatarError("asset_damaged", f"{path} holds no vertices", "Fetch the ICT-FaceKit files again.")
    return np.array([r.split()[:3] for r in rows], dtype=np.float32)


def read_obj_topology(path: Path) -> dict[str, np.ndarray]:
    """Faces, UVs and materials of the neutral OBJ (polygons of 3 or 4 corners, ``v/vt`` or ``v/vt/vn``)."""
    uv, faces, face_uv, face_material, materials = [], [], [], [], []
    current = -1
    for line in path.read_text().splitlines():
        if line.startswith("vt "):
            uv.append(line.split()[1:3])
        elif line.startswith("usemtl "):
            name = line.split(maxsplit=1)[1].strip()
            if name not in materials:
                materials.append(name)
            current = materials.index(name)
        elif line.startswith("f "):
            corners = [c.split("/") for c in line.split()[1:]]
            if not 3 <= len(corners) <= 4:
                raise InvertAvatarError("asset_damaged", f"{path}: polygon with {len(corners)} corners",
                                        "Only triangles and quads are expected in the ICT model.")
            v_ids = [int(c[0]) - 1 for c in corners] + [-1] * (4 - len(corners))
            t_ids = [int(c[1]) - 1 for c in corners] + [-1] * (4 - len(corners))
            faces.append(v_ids)
            face_uv.append(t_ids)
            face_material.append(max(current, 0))
    return {
        "faces": np.array(faces, np.int32), "uv": np.array(uv, np.float32), "face_uv": np.array(face_uv, np.int32),
        "face_material": np.array(face_material, np.int16), "material_names": np.array(materials),
    }


def convert_obj_folder(folder: Path) -> dict[str, np.ndarray]:
    """Arrays in our npz layout from a FaceXModel folder; missing shape OBJs are left out of the bases."""
    folder = Path(folder)
    neutral_path = folder / "generic_neutral_mesh.obj"
    index_path = folder / "vertex_indices.json"
    for required in (neutral_path, index_path):
        if not required.exists():
            raise InvertAvatarError("asset_missing", f"{required.name} not found in {folder}",
                                    "Point at ICT-FaceKit's FaceXModel folder (it holds the neutral mesh and indices).")
    indices = json.loads(index_path.read_text())
    neutral = read_obj_vertices(neutral_path)
    arrays = read_obj_topology(neutral_path)

    def offsets(names: list[str]) -> tuple[np.ndarray, list[str]]:
        found = [n for n in names if (folder / f"{n}.obj").exists()]
        deltas = [read_obj_vertices(folder / f"{n}.obj") - neutral for n in found]
        stack = np.stack(deltas) if deltas else np.zeros((0,) + neutral.shape, np.float32)
        return stack.astype(np.float16), found

    identity_basis, identity_names = offsets([f"identity{i:03d}" for i in range(N_IDENTITIES)])
    expression_basis, expression_names = offsets(list(indices["expressions"]))
    arrays.update(
        vertices=neutral, identity_basis=identity_basis, identity_names=np.array(identity_names),
        expression_basis=expression_basis, expression_names=np.array(expression_names),
        landmarks68=np.array(indices["idx_to_landmark_verts"], np.int32),
        fitting_vertices=np.array(indices["idx_to_fitting_verts"], np.int32),
        rigid_vertices=np.array(indices["idx_to_rigid_verts"], np.int32),
        rigid_landmarks=np.array(indices["idx_to_rigid_landmark_idx"], np.int32),
        region_names=np.array([r[0] for r in ICT_REGIONS]),
        region_ranges=np.array([[r[1], r[2]] for r in ICT_REGIONS], np.int32),
    )
    return arrays


def write_npz(arrays: dict[str, np.ndarray], out_path: Path) -> None:
    """Write the arrays atomically (temporary file, then rename)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out_path)
