"""FaceVerse v2/v3 models from the user's ``.npy`` file, read without executing pickled code.

FaceVerse ships its model as a pickled dict inside a ``.npy``. We parse the ``.npy`` header ourselves and unpickle
with an allow-list (numpy array reconstruction only), so a foreign or tampered file cannot run code.
Keys used (reference §2.2): ``meanshape`` (N*3), ``idBase`` (N*3, I), ``exBase`` (N*3, E), optional ``exBase_52``
(N*3, 52, ARKit order), ``tri`` (T, 3), ``uv_per_ver`` or ``uv`` (N, 2), ``ver_inds`` (eyeball boundaries),
optional ``mediapipe_keypoints`` (478,) and ``keypoints`` (68,).
Units are measured from the file (faceverse_layout.units_to_metres: v3.1 and v3.6 differ); orientation +Y up, face
towards +Z (the FaceVerse code negates y and z to reach its camera frame), inferred from the reference code, not
verified on a real file here. Texture tiles come from the file's own UV chart (faceverse_layout.derive_layout).
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from ..errors import InvertAvatarError
from .arkit import ARKIT_NAMES, ArkitMap, map_sided_names
from .base import HeadModel
from .faceverse_layout import derive_layout, units_to_metres
from .rig import build_rig

REQUIRED_KEYS = ("meanshape", "idBase", "exBase", "tri", "ver_inds")
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
HINT = "FaceVerse models are downloaded from the FaceVerse project under its terms; see docs/faceverse.md."


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's own signature
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def read_npy_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a ``.npy`` holding a pickled dict of arrays, refusing anything but numpy data."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            shape, _, dtype = np.lib.format._read_array_header(handle, version)  # noqa: SLF001 - public format
            if dtype != object or shape != ():
                raise InvertAvatarError("faceverse_damaged", f"{path} holds a {dtype} array, not a FaceVerse dict",
                                        HINT)
            value = _NumpyOnlyUnpickler(handle).load()
    except InvertAvatarError:
        raise
    except FileNotFoundError as exc:
        raise InvertAvatarError("faceverse_missing", f"FaceVerse file not found: {path}", HINT) from exc
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise InvertAvatarError("faceverse_damaged", f"{path} is not a readable FaceVerse model ({exc})", HINT) from exc
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        value = value.item()
    if not isinstance(value, dict):
        raise InvertAvatarError("faceverse_damaged", f"{path} does not hold a dict of arrays", HINT)
    return value


def faceverse_from_dict(model: dict, checksum: str, name: str = "faceverse") -> HeadModel:
    """Build a head model from FaceVerse's dict (see module docstring for the keys)."""
    missing = [k for k in REQUIRED_KEYS if k not in model]
    if missing:
        raise InvertAvatarError("faceverse_damaged", f"The FaceVerse file lacks {missing}", HINT)
    try:
        raw_mean = np.asarray(model["meanshape"], np.float32).reshape(-1, 3)
        n = len(raw_mean)
        ver_inds = np.asarray(model["ver_inds"], np.int64).ravel()
        tri = np.asarray(model["tri"], np.int64).reshape(-1, 3)
        if tri.max(initial=0) >= n or tri.min(initial=0) < 0 or len(ver_inds) < 3 or not (
                0 < ver_inds[0] < ver_inds[1] < ver_inds[2] <= n):
            raise InvertAvatarError("faceverse_damaged", "The FaceVerse triangles or eye indices point past the mesh",
                                    HINT)
        regions = {"eyeball_left": np.arange(ver_inds[0], ver_inds[1]),
                   "eyeball_right": np.arange(ver_inds[1], ver_inds[2]),
                   "face": np.arange(0, ver_inds[0])}
        unit, to_metres = units_to_metres(raw_mean, regions["eyeball_left"], regions["eyeball_right"])
        mean = raw_mean * to_metres
        identity = np.asarray(model["idBase"], np.float32).reshape(n, 3, -1).transpose(2, 0, 1) * to_metres
        has_arkit = "exBase_52" in model
        ex_key = "exBase_52" if has_arkit else "exBase"
        expression = np.asarray(model[ex_key], np.float32).reshape(n, 3, -1).transpose(2, 0, 1) * to_metres
        uv = np.asarray(model.get("uv_per_ver", model.get("uv", np.zeros((n, 2)))), np.float32).reshape(n, 2)
        keypoints = np.asarray(model.get("mediapipe_keypoints", np.zeros(0)), np.int64).ravel()
    except ValueError as exc:
        raise InvertAvatarError("faceverse_damaged", f"The FaceVerse arrays have unexpected shapes ({exc})",
                                HINT) from exc
    if len(keypoints) and (len(keypoints) < 468 or keypoints.max() >= n or keypoints.min() < 0):
        raise InvertAvatarError("faceverse_damaged", f"The FaceVerse file's mediapipe_keypoints ({len(keypoints)}) "
                                "are not MediaPipe's 468/478 points on its mesh", HINT)
    layout = derive_layout(mean, tri, uv, regions, keypoints if len(keypoints) else np.arange(ver_inds[0]))
    faces = np.concatenate([tri, -np.ones((len(tri), 1), np.int64)], 1).astype(np.int32)
    if has_arkit:
        names = ARKIT_NAMES
        arkit = map_sided_names(list(ARKIT_NAMES))
        jaw = expression[ARKIT_NAMES.index("jawOpen")]
    else:
        # v3.1's 171 components have no ARKit meaning: expose them honestly and map no ARKit name.
        names = tuple(f"faceverse_{i:03d}" for i in range(len(expression)))
        arkit = ArkitMap(matrix=np.zeros((len(names), 52), np.float32), to_arkit=np.zeros((52, len(names)),
                         np.float32), missing=ARKIT_NAMES)
        jaw = None
    extras = {"mediapipe_keypoints": keypoints} if len(keypoints) else {}
    extras["file_unit"] = np.array(unit)
    extras["face_uv_box"] = np.array(layout["face_box"], np.float32)
    landmarks68 = np.asarray(model.get("keypoints", np.zeros(0)), np.int64).ravel()
    return HeadModel(
        name=name, checksum=checksum, vertices=mean, faces=faces, uv=layout["uv"], face_uv=layout["face_uv"],
        face_material=layout["face_material"], material_names=layout["material_names"], identity_basis=identity,
        expression_basis=expression, expression_names=tuple(names), landmarks68=landmarks68, regions=regions,
        arkit=arkit, rig=build_rig(mean, regions, jaw), extras=extras,
    )


def load_faceverse(path: Path) -> HeadModel:
    """Load a FaceVerse v2 or v3 ``.npy``; its ARKit keys need a transfer when it has no ``exBase_52``."""
    path = Path(path)
    model = read_npy_dict(path)
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    version = "v3" if "mediapipe_keypoints" in model or np.asarray(model.get("exBase", [])).size else "v2"
    return faceverse_from_dict(model, checksum, name=f"faceverse-{version}")
