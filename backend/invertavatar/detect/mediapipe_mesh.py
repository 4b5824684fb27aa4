"""MediaPipe's canonical face mesh (468 vertices, 898 triangles, per-vertex UVs), read from the Face Landmarker bundle.

The ``.task`` file is a zip. Its member ``geometry_pipeline_metadata_landmarks.binarypb`` is a serialized
``GeometryPipelineMetadata`` protobuf whose field 1 is a ``Mesh3d``: field 3 holds the vertex buffer as 5 floats per
vertex (x, y, z in centimetres, u, v) and field 4 the triangle indices. The wheel of mediapipe ships no generated
protobuf modules, so this module reads the protobuf wire format itself; it accepts both the packed and the unpacked
encoding of repeated fields (the shipped file uses the unpacked one).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from invertavatar.errors import InvertAvatarError

METADATA_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
N_VERTICES = 468
N_TRIANGLES = 898

# Protobuf wire types.
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; return (value, next position)."""
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of one protobuf message.

    Varints come back as ``int``; length-delimited, 32-bit and 64-bit fields as their raw ``bytes``.
    """
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield field, wire, value
        elif wire == _LENGTH:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated length-delimited field")
            yield field, wire, buf[pos:pos + size]
            pos += size
        elif wire == _FIXED32:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32 field")
            yield field, wire, buf[pos:pos + 4]
            pos += 4
        elif wire == _FIXED64:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64 field")
            yield field, wire, buf[pos:pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _unpack_varints(buf: bytes) -> list[int]:
    values = []
    pos = 0
    while pos < len(buf):
        value, pos = _read_varint(buf, pos)
        values.append(value)
    return values


def parse_mesh3d(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse a serialized ``Mesh3d`` into (vertex buffer (V, 5) float32, index buffer (T, 3) int32)."""
    floats: list[bytes] = []
    indices: list[int] = []
    for field, wire, value in iter_fields(buf):
        if field == 3 and wire == _FIXED32:
            floats.append(value)  # type: ignore[arg-type]
        elif field == 3 and wire == _LENGTH:
            floats.append(value)  # type: ignore[arg-type]  # packed: a run of little-endian floats
        elif field == 4 and wire == _VARINT:
            indices.append(value)  # type: ignore[arg-type]
        elif field == 4 and wire == _LENGTH:
            indices.extend(_unpack_varints(value))  # type: ignore[arg-type]
    raw = b"".join(floats)
    if len(raw) % 20:
        raise ValueError(f"vertex buffer of {len(raw) // 4} floats is not a multiple of 5 (x, y, z, u, v)")
    if len(indices) % 3:
        raise ValueError(f"index buffer of {len(indices)} entries is not a multiple of 3")
    vertex_buffer = np.frombuffer(raw, dtype="<f4").reshape(-1, 5).astype(np.float32)
    triangles = np.asarray(indices, dtype=np.int64).reshape(-1, 3).astype(np.int32)
    return vertex_buffer, triangles


def parse_geometry_metadata(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``GeometryPipelineMetadata`` bytes and return its canonical mesh (vertex buffer, triangles)."""
    for field, wire, value in iter_fields(buf):
        if field == 1 and wire == _LENGTH:
            return parse_mesh3d(value)  # type: ignore[arg-type]
    raise ValueError("no canonical mesh (field 1) in the geometry pipeline metadata")


@lru_cache(maxsize=4)
def _load(task_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = Path(task_path)
    hint = "Point to MediaPipe's face_landmarker.task (run `python install.py`, or pass --assets DIR)."
    if not path.is_file():
        raise InvertAvatarError("asset_missing", f"The MediaPipe model {path} does not exist.", hint)
    try:
        with zipfile.ZipFile(path) as bundle:
            data = bundle.read(METADATA_MEMBER)
        vertex_buffer, triangles = parse_geometry_metadata(data)
    except (zipfile.BadZipFile, KeyError, ValueError, struct.error) as exc:
        raise InvertAvatarError(
            "damaged_asset", f"Cannot read the canonical face mesh from {path}: {exc}.",
            "The file is damaged or is not a Face Landmarker bundle; reinstall it with `python install.py`.",
        ) from exc
    if vertex_buffer.shape[0] != N_VERTICES or triangles.shape[0] != N_TRIANGLES:
        raise InvertAvatarError(
            "damaged_asset",
            f"The canonical face mesh in {path} has {vertex_buffer.shape[0]} vertices and {triangles.shape[0]} "
            f"triangles; expected {N_VERTICES} and {N_TRIANGLES}.",
            "Use the Face Landmarker bundle that install.py fetches (it checks the SHA-256).",
        )
    if triangles.min() < 0 or triangles.max() >= N_VERTICES:
        raise InvertAvatarError("damaged_asset", f"The canonical face mesh in {path} has out-of-range indices.",
                                "Reinstall the model with `python install.py`.")
    vertices = vertex_buffer[:, :3].copy()
    uv = vertex_buffer[:, 3:].copy()
    for array in (vertices, uv, triangles):
        array.setflags(write=False)
    return vertices, uv, triangles


def canonical_face_mesh(task_path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return MediaPipe's canonical face mesh from a ``face_landmarker.task`` bundle.

    Returns ``vertices (468, 3)`` float32 in centimetres (MediaPipe's metric space: +Y up, the face looks down +Z,
    like the backend's axes; the subject's left is +X), ``uv (468, 2)`` float32 in [0, 1] exactly as stored —
    image-style, u to the right and **v downward** (forehead v ≈ 0.1, chin v ≈ 0.95), so flip v for a bottom-up
    texture convention — and ``triangles (898, 3)`` int32 vertex indices, counter-clockwise seen from the front.
    Vertex ``i`` is landmark ``i`` of the detector.
    The arrays are read-only and cached per path.
    """
    return _load(str(Path(task_path).resolve()))
