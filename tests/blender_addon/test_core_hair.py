"""The bundle's hair/ folder (docs/bundle-format.md) and the hair-card helpers, without bpy."""

import json
import shutil

import numpy as np
import pytest

import ict_bundle
from blender_addon.core.bundle import read_bundle
from blender_addon.core.errors import AddonError
from blender_addon.core.hair_cards import (linear_to_srgb, melanin_to_rgb, polygon_normals, ribbons, root_spacing,
                                           strand_texture)


def test_hair_round_trip(ict_hair_bundle_dir, ict_hair):
    guides, hair_json = ict_hair
    hair = read_bundle(ict_hair_bundle_dir).hair
    for key, value in guides.items():
        np.testing.assert_array_equal(getattr(hair, key), value, err_msg=key)
    assert hair.points.dtype == np.float32 and hair.curve_offsets.dtype == np.int32 and hair.group.dtype == np.uint8
    np.testing.assert_array_equal(hair.curve_sizes, np.diff(guides["curve_offsets"]))
    assert set(hair.groups) == {"scalp", "beard"}
    scalp = hair.groups["scalp"]
    expected = hair_json["groups"]["scalp"]
    assert scalp.melanin == expected["melanin"] and scalp.tint == tuple(expected["tint"])
    assert scalp.tip == (expected["tip"]["melanin"], expected["tip"]["melanin_redness"])
    assert hair.groups["beard"].tip is None and scalp.strands_per_cm2 == 120.0
    beard = hair.group_curves("beard")
    points, offsets, radius = hair.subset(beard)
    assert len(offsets) == len(beard) + 1 and offsets[-1] == len(points) == len(radius)
    first = guides["curve_offsets"][beard[0]]
    np.testing.assert_array_equal(points[:offsets[1]], guides["points"][first:first + offsets[1]])


def test_bundle_without_hair_has_none(ict_bundle_dir):
    assert read_bundle(ict_bundle_dir).hair is None


def _broken(src, tmp_path, guides=None, hair_json=None):
    dst = tmp_path / "broken.avatar"
    shutil.copytree(src, dst)
    if guides is not None:
        np.savez(dst / "hair" / "guides.npz", **guides)
    if hair_json is not None:
        (dst / "hair" / "hair.json").write_text(json.dumps(hair_json))
    ict_bundle.refresh_checksums(dst)
    return dst


def _edit_guides(guides, key, value):
    out = dict(guides)
    out[key] = value(guides[key]) if callable(value) else value
    return out


GUIDE_FAULTS = [
    ("points", lambda a: a[:, :2], "'points' has shape"),
    ("points", lambda a: np.where(np.arange(len(a))[:, None] == 3, np.nan, a).astype(np.float32), "NaN"),
    ("radius", lambda a: a[:-1], "'radius' has shape"),
    ("radius", lambda a: -a, "negative"),
    ("curve_offsets", lambda a: np.r_[a[:1], [1], a[2:]].astype(np.int32), "at least 2"),  # a 1-point curve
    ("curve_offsets", lambda a: np.concatenate([a[:-1], [a[-1] - 1]]).astype(np.int32), "from 0 to"),
    ("curve_offsets", lambda a: a.astype(np.float32), "type float32"),
    ("root_face", lambda a: np.full_like(a, 10**6), "'root_face' refers to polygons"),
    ("root_uv", lambda a: a[:, :1], "'root_uv' has shape"),
    ("group", lambda a: np.full_like(a, 7), "unknown group"),
    ("scalp_vertices", lambda a: a + 10**6, "'scalp_vertices' refers to vertices"),
]


@pytest.mark.parametrize("key, edit, message", GUIDE_FAULTS)
def test_bad_guides_are_refused(ict_hair_bundle_dir, ict_hair, tmp_path, key, edit, message):
    bundle = _broken(ict_hair_bundle_dir, tmp_path, guides=_edit_guides(ict_hair[0], key, edit))
    with pytest.raises(AddonError, match=message) as err:
        read_bundle(bundle)
    assert err.value.code == "bad_bundle" and err.value.hint


def test_missing_guide_array_is_refused(ict_hair_bundle_dir, ict_hair, tmp_path):
    guides = {k: v for k, v in ict_hair[0].items() if k != "root_uv"}
    with pytest.raises(AddonError, match="lacks the array 'root_uv'"):
        read_bundle(_broken(ict_hair_bundle_dir, tmp_path, guides=guides))


def _edit_json(hair_json, edit):
    out = json.loads(json.dumps(hair_json))
    edit(out)
    return out


JSON_FAULTS = [
    (lambda j: j.update(version=2), "version 2"),
    (lambda j: j.pop("groups"), "no 'groups'"),
    (lambda j: j["groups"].update(eyebrows=j["groups"]["scalp"]), "unknown hair groups"),
    (lambda j: j["groups"].pop("beard"), "beard curves but hair/hair.json no 'beard'"),
    (lambda j: j["groups"]["scalp"].update(melanin=1.5), "'melanin' = 1.5 lies outside"),
    (lambda j: j["groups"]["scalp"].update(roughness="rough"), "'roughness' must be a number"),
    (lambda j: j["groups"]["scalp"].update(tint=[1, 1]), "'tint' must be 3"),
    (lambda j: j["groups"]["scalp"]["tip"].pop("melanin_redness"), "'melanin_redness' must be a number"),
]


@pytest.mark.parametrize("edit, message", JSON_FAULTS)
def test_bad_hair_json_is_refused(ict_hair_bundle_dir, ict_hair, tmp_path, edit, message):
    bundle = _broken(ict_hair_bundle_dir, tmp_path, hair_json=_edit_json(ict_hair[1], edit))
    with pytest.raises(AddonError, match=message) as err:
        read_bundle(bundle)
    assert err.value.code == "bad_bundle"


def test_half_a_hair_folder_is_refused(ict_hair_bundle_dir, tmp_path):
    bundle = tmp_path / "half.avatar"
    shutil.copytree(ict_hair_bundle_dir, bundle)
    (bundle / "hair" / "hair.json").unlink()
    ict_bundle.refresh_checksums(bundle)
    with pytest.raises(AddonError, match="has hair/guides.npz but not hair/hair.json"):
        read_bundle(bundle)


def test_damaged_guides_are_refused(ict_hair_bundle_dir, tmp_path):
    bundle = tmp_path / "damaged.avatar"
    shutil.copytree(ict_hair_bundle_dir, bundle)
    with open(bundle / "hair" / "guides.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(AddonError, match="guides.npz is damaged"):
        read_bundle(bundle)


def test_ribbons_follow_the_strands_and_lie_flat():
    # Two curves in the z = 0 plane growing along +y, surface normal +z: the cards must lie in that plane.
    points = np.array([[0, 0, 0], [0, 1, 0], [0, 2, 0], [5, 0, 0], [5, 1, 0]], np.float64)
    offsets = np.array([0, 3, 5])
    cards = ribbons(points, offsets, np.array([[0, 0, 1.0], [0, 0, 1.0]]), width=0.2, tip_width=0.5)
    assert cards.positions.shape == (10, 3) and cards.faces.shape == (3, 4)
    np.testing.assert_allclose(cards.positions[:, 2], 0.0, atol=1e-7)
    # Left/right edges straddle the strand: the root is 0.2 wide, the tip 0.1.
    np.testing.assert_allclose(cards.positions[0:2, 0], [-0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(np.abs(cards.positions[4:6, 0]), 0.05, atol=1e-6)
    np.testing.assert_array_equal(cards.root_index, [0] * 6 + [1] * 4)
    # No quad joins the two curves, and every quad faces out of the skin (+z, counter-clockwise from outside).
    assert not np.any((cards.faces < 6).any(1) & (cards.faces >= 6).any(1))
    p = cards.positions[cards.faces]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 3] - p[:, 0])
    assert np.all(normal[:, 2] > 0)
    # UVs: u across (0 left, 1 right), v root 0 -> tip 1 along each card.
    uv = cards.loop_uv.reshape(-1, 4, 2)
    np.testing.assert_allclose(uv[0], [[0, 0], [1, 0], [1, 0.5], [0, 0.5]], atol=1e-6)
    np.testing.assert_allclose(uv[2], [[0, 0], [1, 0], [1, 1], [0, 1]], atol=1e-6)


def test_ribbon_straight_out_of_the_skin_still_has_width():
    cards = ribbons(np.array([[0, 0, 0], [0, 0, 1.0]]), np.array([0, 2]), np.array([[0, 0, 1.0]]), width=0.1)
    assert np.linalg.norm(cards.positions[0] - cards.positions[1]) == pytest.approx(0.1)


def test_polygon_normals_and_spacing():
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    normals = polygon_normals(verts, np.array([[0, 1, 2, 3], [0, 2, 1, -1]]))
    np.testing.assert_allclose(normals, [[0, 0, 1], [0, 0, -1]], atol=1e-12)
    grid = np.stack(np.meshgrid(np.arange(5) * 0.01, np.arange(5) * 0.01), -1).reshape(-1, 2)
    assert root_spacing(np.c_[grid, np.zeros(25)]) == pytest.approx(0.01)


def test_melanin_colour_darkens_and_reddens():
    blond, brown, black = (melanin_to_rgb(m, 0.3) for m in (0.2, 0.6, 0.95))
    assert blond.sum() > brown.sum() > black.sum() and black.max() < 0.05
    red = melanin_to_rgb(0.5, 0.9)
    assert red[0] > red[1] > red[2]  # pheomelanin keeps red
    tinted = melanin_to_rgb(0.2, 0.3, tint=(1.0, 0.2, 0.2))
    assert tinted[1] < blond[1] and tinted[0] == pytest.approx(blond[0])
    np.testing.assert_allclose(linear_to_srgb([0.0, 1.0, 0.214]), [0.0, 1.0, 0.5], atol=2e-3)


def test_strand_texture_has_strands_and_gaps():
    image = strand_texture(64, 128, strands=8, root_rgb=(0.1, 0.05, 0.02), tip_rgb=(0.4, 0.3, 0.2), seed=1)
    assert image.shape == (128, 64, 4) and image.dtype == np.float32
    alpha = image[..., 3]
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    root_row = alpha[2]
    # Opaque strands with see-through gaps between them: several separate runs of coverage across the root row.
    runs = np.count_nonzero(np.diff((root_row > 0.5).astype(int)) == 1)
    assert runs >= 5 and (root_row == 0).mean() > 0.1
    assert alpha[-1].mean() < alpha[2].mean()  # strands end before the tip at different lengths
    assert image[2, :, 0][root_row > 0.5].mean() < image[-20, :, 0][alpha[-20] > 0.2].mean()  # lighter tips
