"""ICT Face Model: npz and raw OBJ agree, evaluation reproduces the shipped shapes, the rig is sensible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.headmodel.ict import array_checksum, load_ict, read_ict_npz
from invertavatar.headmodel.ict_convert import convert_obj_folder, read_obj_vertices


@pytest.fixture(scope="module")
def raw_dir(assets_dir):
    return assets_dir / "ict-face-model" / "raw"


def test_npz_and_raw_obj_folder_agree(ict_model, raw_dir):
    from_raw = load_ict(raw_dir)
    assert from_raw.faces.shape == ict_model.faces.shape
    np.testing.assert_array_equal(from_raw.faces, ict_model.faces)
    np.testing.assert_array_equal(from_raw.face_uv, ict_model.face_uv)
    # ≤ 2e-3 cm = 2e-5 m: the npz stores bases in float16.
    assert np.abs(from_raw.vertices - ict_model.vertices).max() <= 2e-5
    for name in from_raw.expression_names:
        row = ict_model.expression_names.index(name)
        diff = np.abs(from_raw.expression_basis[from_raw.expression_names.index(name)]
                      - ict_model.expression_basis[row]).max()
        assert diff <= 2e-5, name
    np.testing.assert_array_equal(from_raw.landmarks68, ict_model.landmarks68)
    for region, ids in ict_model.regions.items():
        np.testing.assert_array_equal(from_raw.regions[region], ids)


def test_converter_reproduces_npz_arrays_bit_for_bit(assets_dir, raw_dir):
    converted = convert_obj_folder(raw_dir)
    shipped = read_ict_npz(assets_dir / "ict-face-model" / "ict_face_light.npz")
    for key in ("vertices", "faces", "uv", "face_uv", "face_material", "landmarks68", "region_ranges"):
        np.testing.assert_array_equal(converted[key], shipped[key])
    names = list(shipped["expression_names"])
    jaw = converted["expression_basis"][list(converted["expression_names"]).index("jawOpen")]
    np.testing.assert_array_equal(jaw, shipped["expression_basis"][names.index("jawOpen")])
    assert array_checksum(converted) != array_checksum(shipped)  # partial raw folder: fewer shapes


@pytest.mark.parametrize("shape", ["jawOpen", "eyeBlink_L"])
def test_evaluate_reproduces_expression_obj(ict_model, raw_dir, shape):
    weights = torch.zeros(1, ict_model.n_expression)
    weights[0, ict_model.expression_names.index(shape)] = 1.0
    vertices = ict_model.evaluate(expression=weights)[0].numpy()
    expected = read_obj_vertices(raw_dir / f"{shape}.obj") * 0.01
    assert np.abs(vertices - expected).max() <= 2e-5


def test_evaluate_reproduces_identity_obj(ict_model, raw_dir):
    coefficients = torch.zeros(1, ict_model.n_identity)
    coefficients[0, 0] = 1.0
    vertices = ict_model.evaluate(identity=coefficients)[0].numpy()
    expected = read_obj_vertices(raw_dir / "identity000.obj") * 0.01
    assert np.abs(vertices - expected).max() <= 2e-5


def test_evaluate_is_batched_and_differentiable(ict_model):
    identity = torch.zeros(3, ict_model.n_identity, requires_grad=True)
    expression = torch.zeros(3, ict_model.n_expression, requires_grad=True)
    vertices = ict_model.evaluate(identity, expression, vertex_ids=ict_model.landmarks68)
    assert vertices.shape == (3, 68, 3)
    vertices.sum().backward()
    assert identity.grad is not None and torch.isfinite(identity.grad).all()
    assert expression.grad.abs().sum() > 0


def test_geometry_is_in_metres_and_faces_forward(ict_model):
    extent = ict_model.vertices.max(0) - ict_model.vertices.min(0)
    assert 0.15 < extent[0] < 0.35 and 0.2 < extent[1] < 0.45  # a head, in metres
    nose_tip = ict_model.vertices[ict_model.landmarks68[30]]
    assert nose_tip[2] > ict_model.vertices[ict_model.regions["head_and_neck"], 2].mean()  # face towards +Z


def test_rig_bones_are_where_a_rigger_would_put_them(ict_model):
    rig = ict_model.rig
    heads = dict(zip(rig.names, rig.heads))
    eye_l, eye_r = ict_model.regions["eyeball_left"], ict_model.regions["eyeball_right"]
    assert heads["eye_L"][0] > 0 > heads["eye_R"][0]  # subject's left is +X
    # Each eye bone sits at its eyeball's centre: the sclera behind the cornea is equidistant from it (the mean
    # vertex, 4.6 mm towards the cornea, is not: 3.2 mm spread; turned about it the eye would leave its socket).
    material = np.asarray(ict_model.material_names)[ict_model.face_material[ict_model.triangle_face]]
    for bone, name in (("eye_L", "M_ScleraLeft"), ("eye_R", "M_ScleraRight")):
        sclera = ict_model.vertices[np.unique(ict_model.triangles[material == name])]
        offset = sclera - heads[bone]
        behind = offset[:, 2] < np.linalg.norm(offset, axis=1) * np.cos(np.radians(45))  # not the cornea cap
        distance = np.linalg.norm(offset[behind], axis=1)
        assert distance.std() < 1e-3 and 0.010 < distance.mean() < 0.018, (bone, distance.std(), distance.mean())
    assert heads["jaw"][1] < heads["eye_L"][1] and heads["neck"][1] < heads["head"][1]
    np.testing.assert_allclose(rig.weights.sum(1), 1.0, atol=1e-5)
    assert (rig.weights[eye_l, 4] == 1).all() and (rig.weights[eye_r, 5] == 1).all()
    teeth = ict_model.regions["teeth"]
    lower_teeth = teeth[ict_model.vertices[teeth, 1] < np.median(ict_model.vertices[teeth, 1])]
    assert rig.weights[lower_teeth, 3].mean() > 0.5  # the jaw carries the lower teeth


def test_jaw_bone_rotation_approximates_jaw_open(ict_model):
    from invertavatar.headmodel.rig import _rotate_x, jaw_pivot

    delta = ict_model.expression_basis[ict_model.expression_names.index("jawOpen")]
    pivot, angle = jaw_pivot(ict_model.vertices, delta)
    moving = np.linalg.norm(delta, axis=1) > 0.5 * np.linalg.norm(delta, axis=1).max()
    rotated = _rotate_x(ict_model.vertices[moving], pivot[1:], angle)
    residual = np.linalg.norm(rotated - ict_model.vertices[moving] - delta[moving], axis=1).mean()
    assert 0.1 < angle < 0.5  # opening, 6°..29°
    assert residual < 0.3 * np.linalg.norm(delta[moving], axis=1).mean()


def test_damaged_npz_gives_clear_error(tmp_path):
    from invertavatar.errors import InvertAvatarError

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvertAvatarError) as info:
        load_ict(bad)
    assert info.value.code == "asset_damaged" and "install.py" in info.value.hint
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(InvertAvatarError, match="missing"):
        load_ict(tmp_path / "foreign.npz")
