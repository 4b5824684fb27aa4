"""ICT Face Model Light (MIT): load our npz (or convert the raw OBJ folder) into a :class:`HeadModel`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import InvertAvatarError
from .arkit import map_sided_names
from .base import HeadModel
from .rig import build_rig

ICT_MODEL_ID = "ict-face-light"
CM_TO_M = 0.01
NPZ_KEYS = ("vertices", "faces", "uv", "face_uv", "face_material", "material_names", "identity_basis",
            "identity_names", "expression_basis", "expression_names", "landmarks68", "fitting_vertices",
            "rigid_vertices", "rigid_landmarks", "region_names", "region_ranges")


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes (independent of zip timestamps)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def read_ict_npz(path: Path) -> dict[str, np.ndarray]:
    """Read and check the npz layout of ``shared/assets/ict-face-model/README.md``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise InvertAvatarError("asset_missing", f"ICT Face Model file not found: {path}",
                                "Run `python install.py` (or `--assets DIR`) to fetch the head model.") from exc
    except Exception as exc:  # zipfile/numpy raise many types on a damaged file
        raise InvertAvatarError("asset_damaged", f"ICT Face Model file is damaged: {path} ({exc})",
                                "Delete it and run `python install.py` again.") from exc
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise InvertAvatarError("asset_damaged", f"{path} is not an ICT Face Model npz (missing {missing})",
                                "Run `python install.py` again to rebuild it.")
    return arrays


def ict_from_arrays(arrays: dict[str, np.ndarray], checksum: str) -> HeadModel:
    """Build the head model from the npz arrays (centimetres in the file, metres in memory)."""
    vertices = arrays["vertices"].astype(np.float32) * CM_TO_M
    identity = arrays["identity_basis"].astype(np.float32) * CM_TO_M
    expression = arrays["expression_basis"].astype(np.float32) * CM_TO_M
    names = tuple(str(n) for n in arrays["expression_names"])
    regions = {str(n): np.arange(lo, hi + 1, dtype=np.int64)
               for n, (lo, hi) in zip(arrays["region_names"], arrays["region_ranges"])}
    regions["fitting"] = arrays["fitting_vertices"].astype(np.int64)
    regions["rigid"] = arrays["rigid_vertices"].astype(np.int64)
    jaw_delta = expression[names.index("jawOpen")]
    rig = build_rig(vertices, regions, jaw_delta)
    return HeadModel(
        name=ICT_MODEL_ID, checksum=checksum, vertices=vertices, faces=arrays["faces"].astype(np.int32),
        uv=arrays["uv"].astype(np.float32), face_uv=arrays["face_uv"].astype(np.int32),
        face_material=arrays["face_material"].astype(np.int16),
        material_names=tuple(str(n) for n in arrays["material_names"]),
        identity_basis=identity, expression_basis=expression, expression_names=names,
        landmarks68=arrays["landmarks68"].astype(np.int64), regions=regions, arkit=map_sided_names(names), rig=rig,
        extras={"rigid_landmarks": arrays["rigid_landmarks"].astype(np.int64)},
    )


def load_ict(path: Path) -> HeadModel:
    """Load the ICT Face Model from our npz, or from a raw ICT-FaceKit ``FaceXModel`` folder of OBJ files."""
    path = Path(path)
    if path.is_dir():
        from .ict_convert import convert_obj_folder  # the converter is only needed for raw folders

        arrays = convert_obj_folder(path)
    else:
        arrays = read_ict_npz(path)
    return ict_from_arrays(arrays, array_checksum(arrays))
