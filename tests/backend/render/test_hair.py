"""render/hair.py's parts: the melanin colour, guide resampling, densification over the scalp, posing, ribbons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.render import Camera
from invertavatar.render.hair import (STRAND_STEP, Strands, build_strands, highlight, melanin_colour, pose_strands,
                                      resample_curves, root_and_tip_colour, strand_points, strand_ribbons)
from invertavatar.render.synthetic_hair import synthetic_groom, synthetic_hair_params


@pytest.fixture(scope="module")
def head(ict_model):
    from invertavatar.pipeline.avatar_mesh import mesh_arrays

    mesh = mesh_arrays(ict_model, np.zeros(ict_model.identity_basis.shape[0], np.float32))
    return mesh, synthetic_groom(mesh, guides=200, beard=True)


def test_melanin_colour_follows_blenders_formula():
    # Worked by hand: melanin 0.5, redness 0 → quantity ln 2, σa = ln2·(0.506, 0.841, 1.653); β = 0 → f = 5.969.
    expected = np.exp(-np.sqrt(math.log(2.0) * np.array([0.506, 0.841, 1.653])) * 5.969)
    assert np.allclose(melanin_colour(0.5, 0.0, 0.0), expected, rtol=1e-9)
    # More melanin is darker in every channel; more redness keeps more red than blue.
    assert np.all(melanin_colour(0.9, 0.2, 0.3) < melanin_colour(0.6, 0.2, 0.3))
    red = melanin_colour(0.6, 0.9, 0.3)
    assert red[0] / red[2] > melanin_colour(0.6, 0.0, 0.3)[0] / melanin_colour(0.6, 0.0, 0.3)[2]


def test_strands_take_the_measured_root_and_tip_colours_and_a_tint_only_without_them():
    group = synthetic_hair_params()["groups"]["scalp"]
    measured = dict(group, tip_colour=[0.09, 0.06, 0.04], tint=[0.5, 1.0, 1.0])
    root, tip = root_and_tip_colour(measured)
    # Measured colours are what the fitted shader renders, dye included: the tint is not applied again.
    assert np.allclose(root, group["root_colour"]) and np.allclose(tip, [0.09, 0.06, 0.04])
    root, tip = root_and_tip_colour(dict(group, tip_colour=None))
    assert np.allclose(root, tip)
    unmeasured = {k: v for k, v in measured.items() if k not in ("root_colour", "tip_colour")}
    darker, _ = root_and_tip_colour(unmeasured)
    plain, _ = root_and_tip_colour(dict(unmeasured, tint=[1.0, 1.0, 1.0]))
    assert np.isclose(darker[0], 0.5 * plain[0]) and np.isclose(darker[1], plain[1])


def test_rougher_hair_has_a_wider_weaker_highlight():
    smooth, rough = highlight({"roughness": 0.2}), highlight({"roughness": 0.6})
    assert smooth[0] > rough[0] and smooth[1] > rough[1]


def test_resampling_keeps_the_ends_and_spaces_by_arc_length():
    points = np.array([[0, 0, 0], [1, 0, 0], [1, 3, 0], [0, 0, 0], [0, 0, 2]], np.float32)
    radius = np.array([2, 1, 0, 4, 2], np.float32)
    out, out_radius = resample_curves(points, np.array([0, 3, 5]), radius, count=5)
    assert out.shape == (2, 5, 3)
    assert np.allclose(out[0, 0], 0) and np.allclose(out[0, -1], [1, 3, 0])
    assert np.allclose(np.linalg.norm(np.diff(out[0], axis=0), axis=1), 1.0)  # length 4 in 4 equal steps
    assert np.allclose(out_radius[1], [4, 3.5, 3, 2.5, 2])


def test_longer_hair_gets_more_points_per_strand():
    def curves(*lengths):
        # Roots a metre apart: the jump from one curve's tip to the next root is no strand's length.
        points = np.concatenate([[[i, 0, 0], [i, -length, 0]] for i, length in enumerate(lengths)]).astype(np.float32)
        return points, np.arange(0, 2 * len(lengths) + 1, 2)

    assert strand_points(*curves(0.02, 0.03)) == 8  # the lower bound
    assert strand_points(*curves(0.02, 10 * STRAND_STEP)) == 11  # the longest guide counts
    assert strand_points(*curves(1.0)) == 24  # the upper bound


def test_densified_strands_grow_where_the_guides_grow(head):
    mesh, hair = head
    strands = build_strands(hair, mesh, synthetic_hair_params(), max_strands=3000)
    guides = len(hair["curve_offsets"]) - 1
    assert isinstance(strands, Strands) and strands.guides == guides and 2000 < len(strands) <= 3000
    vertices = mesh["vertices"]
    roots = strands.points[:, 0]
    # New roots lie on the skin: their anchor triangle's blend is the root itself.
    anchored = (vertices[strands.anchor] * strands.anchor_weights[..., None]).sum(1)
    assert np.abs(anchored[guides:] - roots[guides:]).max() < 1e-5
    # ... and near the guides of their own group (within about a guide spacing and a triangle).
    from scipy.spatial import cKDTree

    for g in (0, 1):
        tree = cKDTree(hair["points"][hair["curve_offsets"][:-1]][hair["group"] == g])
        distance = tree.query(roots[guides:][strands.group[guides:] == g])[0]
        assert distance.size and distance.max() < 0.03
    # No scalp hair grows on the forehead (the groom's hairline there is above 0.10 m; the scalp region's edge
    # triangles reach a centimetre lower); each new strand keeps its guides' length roughly.
    scalp = strands.group == 0
    front = scalp & (roots[:, 2] > 0.07)
    assert front.sum() > 20 and roots[front, 1].min() > 0.09
    lengths = np.linalg.norm(np.diff(strands.points, axis=1), axis=2).sum(1)
    assert np.median(lengths[guides:][scalp[guides:]]) == pytest.approx(np.median(lengths[:guides][scalp[:guides]]),
                                                                        rel=0.2)


def test_strand_count_is_capped_but_keeps_the_guides(head):
    mesh, hair = head
    guides = len(hair["curve_offsets"]) - 1
    assert len(build_strands(hair, mesh, synthetic_hair_params(), max_strands=10)) == guides


def test_pose_turns_strands_about_the_head_bone_and_shifts_beard_with_the_jaw(head):
    mesh, hair = head
    strands = build_strands(hair, mesh, synthetic_hair_params(), max_strands=500)
    rest = pose_strands(strands, mesh, np.zeros(52), np.array([1.0, 0, 0, 0]), np.zeros(3)).numpy()
    assert np.allclose(rest, strands.points)
    half = math.radians(30) / 2
    turned = pose_strands(strands, mesh, np.zeros(52), np.array([math.cos(half), 0, math.sin(half), 0]),
                          np.array([0.0, 0.01, 0.0])).numpy()
    pivot = mesh["bone_heads"][list(mesh["bone_names"]).index("head")]
    R = np.array([[math.cos(2 * half), 0, math.sin(2 * half)], [0, 1, 0],
                  [-math.sin(2 * half), 0, math.cos(2 * half)]])
    assert np.allclose(turned, (strands.points - pivot) @ R.T + pivot + [0, 0.01, 0], atol=1e-6)
    jaw = np.zeros(52)
    jaw[ARKIT_NAMES.index("jawOpen")] = 1.0
    opened = pose_strands(strands, mesh, jaw, np.array([1.0, 0, 0, 0]), np.zeros(3)).numpy()
    drop = (opened - strands.points)[..., 1].mean(1)
    assert drop[strands.group == 1].mean() < -0.005  # the beard goes down with the chin
    assert np.abs(drop[strands.group == 0]).max() < 1e-3  # the scalp does not move


def test_ribbons_face_the_camera_and_are_at_least_a_pixel_wide(head):
    mesh, hair = head
    strands = build_strands(hair, mesh, synthetic_hair_params(), max_strands=400)
    camera = Camera.frontal(400.0, 200, 200, 0.8)
    posed = torch.from_numpy(strands.points)
    world, triangles, colour = strand_ribbons(strands, posed, camera)
    n, k = strands.points.shape[:2]
    assert world.shape == (n * k * 2, 3) and triangles.shape == (n * (k - 1) * 2, 3) and colour.shape == world.shape
    screen = camera.project(world[None])[0]
    x, y = screen[triangles, 0], screen[triangles, 1]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    assert bool((area <= 0).all())  # counter-clockwise as seen: they survive back-face culling
    pairs = screen[:, :2].reshape(n, k, 2, 2)
    width = (pairs[:, :, 1] - pairs[:, :, 0]).norm(dim=-1)
    # Ribbons are camera-facing but the strand may lean towards the camera, shortening nothing across it.
    assert float(width[:, 0].min()) == pytest.approx(1.7, rel=0.02)
    assert float(width[:, -1].min()) == pytest.approx(0.85, rel=0.05)
    assert float(colour.min()) >= 0.0 and float(colour.max()) <= 1.0
