"""The canonical face mesh read from the Face Landmarker bundle with our own protobuf wire parser."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from invertavatar.detect.mediapipe_mesh import canonical_face_mesh, iter_fields, parse_geometry_metadata
from invertavatar.errors import InvertAvatarError


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def test_canonical_mesh_shapes_and_ranges(task_path):
    vertices, uv, triangles = canonical_face_mesh(task_path)
    assert vertices.shape == (468, 3) and uv.shape == (468, 2) and triangles.shape == (898, 3)
    assert vertices.dtype == np.float32 and triangles.dtype == np.int32
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    assert triangles.min() == 0 and triangles.max() == 467
    assert len(np.unique(triangles)) == 468  # every vertex belongs to a triangle
    # A face about 15 cm wide and 18 cm tall (centimetres), symmetric about x = 0.
    extent = vertices.max(0) - vertices.min(0)
    assert 12 < extent[0] < 18 and 14 < extent[1] < 22
    mirrored = vertices * np.array([-1.0, 1.0, 1.0], np.float32)
    nearest = np.min(np.linalg.norm(mirrored[:, None] - vertices[None], axis=2), axis=1)
    assert nearest.max() < 1e-3


def test_canonical_mesh_orientation(task_path):
    vertices, uv, triangles = canonical_face_mesh(task_path)
    # Backend axes: +Y up (forehead 10 above chin 152), the face looks down +Z (nose tip 4 in front), the subject's
    # left (outer eye corner 263) at +X.
    assert vertices[10, 1] > vertices[152, 1]
    assert int(np.argmax(vertices[:, 2])) in (1, 4)
    assert vertices[263, 0] > 0 > vertices[33, 0]
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    normals_z = np.cross(b - a, c - a)[:, 2]
    assert (normals_z > 0).mean() > 0.95  # counter-clockwise seen from the front
    assert uv[10, 1] < uv[152, 1]  # v grows downward as stored


def test_parser_accepts_packed_encoding():
    xyzuv = np.arange(15, dtype=np.float32).reshape(3, 5)
    indices = [0, 1, 2, 2, 1, 0]
    packed_floats = xyzuv.astype("<f4").tobytes()
    packed_ints = b"".join(_varint(i) for i in indices)
    mesh = (_field(1, 0, _varint(0)) + _field(3, 2, _varint(len(packed_floats)) + packed_floats)
            + _field(4, 2, _varint(len(packed_ints)) + packed_ints))
    metadata = _field(3, 0, _varint(1)) + _field(1, 2, _varint(len(mesh)) + mesh)
    buffer, triangles = parse_geometry_metadata(metadata)
    np.testing.assert_array_equal(buffer, xyzuv)
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [2, 1, 0]])


def test_parser_accepts_unpacked_encoding_and_large_varints():
    floats = [1.5, -2.0, 3.25, 0.5, 0.75]
    mesh = b"".join(_field(3, 5, struct.pack("<f", f)) for f in floats)
    mesh += b"".join(_field(4, 0, _varint(i)) for i in (300, 70000, 5))
    buffer, triangles = parse_geometry_metadata(_field(1, 2, _varint(len(mesh)) + mesh))
    np.testing.assert_allclose(buffer[0], floats)
    np.testing.assert_array_equal(triangles[0], [300, 70000, 5])


def test_parser_rejects_truncated_data():
    with pytest.raises(ValueError):
        list(iter_fields(_field(1, 2, _varint(50)) + b"short"))
    with pytest.raises(ValueError):
        list(iter_fields(b"\x08\xff"))


def test_missing_and_damaged_task_files(tmp_path):
    with pytest.raises(InvertAvatarError) as missing:
        canonical_face_mesh(tmp_path / "nothing.task")
    assert missing.value.code == "asset_missing" and "install.py" in missing.value.hint
    not_zip = tmp_path / "broken.task"
    not_zip.write_bytes(b"this is not a zip file")
    with pytest.raises(InvertAvatarError) as damaged:
        canonical_face_mesh(not_zip)
    assert damaged.value.code == "damaged_asset"
    wrong_zip = tmp_path / "other.task"
    with zipfile.ZipFile(wrong_zip, "w") as archive:
        archive.writestr("readme.txt", "no metadata here")
    with pytest.raises(InvertAvatarError) as no_member:
        canonical_face_mesh(wrong_zip)
    assert no_member.value.code == "damaged_asset"
