"""render_avatar: expression deltas, head pose about the head bone, texture, background, and a bundle round trip."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from invertavatar.errors import InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.render import Camera
from invertavatar.render.avatar import render_avatar

SIZE = 64
RED, BLUE, BG = (220, 20, 20), (20, 20, 220), (0, 100, 0)


def _mesh(pivot=(0.0, 0.0, 0.0)) -> dict[str, np.ndarray]:
    """Two quads side by side facing +Z (±0.1 m); the left (−X) quad maps to the red half of the albedo."""
    xs, ys = np.meshgrid([-0.1, 0.0, 0.1], [-0.1, 0.1])
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(6)], 1).astype(np.float32)
    faces = np.array([[0, 1, 4, 3], [1, 2, 5, 4]], np.int32)  # counter-clockwise seen from +Z
    uv = np.stack([(xs.ravel() + 0.1) / 0.2, (ys.ravel() + 0.1) / 0.2], 1).astype(np.float32)
    deltas = np.zeros((52, 6, 3), np.float32)
    deltas[ARKIT_NAMES.index("jawOpen"), :, 1] = -0.05  # the whole plane drops 5 cm at weight 1
    n = len(vertices)
    return {
        "vertices": vertices, "faces": faces, "uv": uv, "face_uv": faces.copy(),
        "face_material": np.zeros(2, np.int16), "material_names": np.array(["M_Face"]),
        "expression_names": np.array(ARKIT_NAMES), "expression_deltas": deltas,
        "expression_available": np.ones(52, bool),
        "bone_names": np.array(["root", "neck", "head", "jaw", "eye_L", "eye_R"]),
        "bone_parents": np.array([-1, 0, 1, 2, 2, 2], np.int32),
        "bone_heads": np.array([[0, 0, 0], [0, 0, 0], pivot, [0, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32),
        "bone_tails": np.array([[0, 0.1, 0]] * 6, np.float32),
        "vertex_weights": np.tile(np.array([[0, 0, 1, 0, 0, 0]], np.float32), (n, 1)),
    }


def _albedo() -> np.ndarray:
    albedo = np.zeros((16, 16, 3), np.uint8)
    albedo[:, :8] = RED
    albedo[:, 8:] = BLUE
    return albedo


def _render(bundle, arkit=None, rotation=(1, 0, 0, 0), translation=(0, 0, 0), **kwargs):
    camera = Camera.frontal(100.0, SIZE, SIZE, 0.5)
    arkit = np.zeros(52) if arkit is None else arkit
    return render_avatar(bundle, arkit, rotation, translation, camera, BG, shading=False, **kwargs)


def _colour_box(image: np.ndarray, colour) -> tuple[int, int, int, int]:
    """Bounding box (row0, row1, col0, col1) of the pixels where ``colour``'s dominant channel (red or blue) wins.

    Dominance rather than equality because bilinear texture sampling blends the two halves along the seam.
    """
    img = image.astype(int)
    red, blue = img[..., 0] - img[..., 2], img[..., 2] - img[..., 0]
    hit = (red if colour == RED else blue) > 50
    rows, cols = np.nonzero(hit)
    assert rows.size, f"no pixel of colour {colour}"
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_neutral_render_shows_texture_and_background():
    bundle = SimpleNamespace(mesh=_mesh(), albedo=_albedo())
    image = _render(bundle)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == BG
    assert tuple(image[30, 15]) == RED and tuple(image[30, 48]) == BLUE  # away from the seam: the texel colours
    # ±0.1 m at 0.5 m with f = 100 → ±20 px: columns 12..51; red left of the centre, blue right.
    assert _colour_box(image, RED) == (12, 51, 12, 31)
    assert _colour_box(image, BLUE) == (12, 51, 32, 51)


def test_expression_weights_move_the_mesh():
    bundle = SimpleNamespace(mesh=_mesh(), albedo=_albedo())
    arkit = np.zeros(52)
    arkit[ARKIT_NAMES.index("jawOpen")] = 1.0
    image = _render(bundle, arkit)
    assert _colour_box(image, RED)[:2] == (22, 61)  # 5 cm down = 10 px lower in the image


def test_head_pose_rotates_about_the_head_bone_and_translates():
    half_turn_z = (0.0, 0.0, 0.0, 1.0)  # 180° about +Z
    about_origin = _render(SimpleNamespace(mesh=_mesh(), albedo=_albedo()), rotation=half_turn_z)
    assert _colour_box(about_origin, RED)[2:] == (32, 51)  # left and right swap
    about_pivot = _render(SimpleNamespace(mesh=_mesh(pivot=(0.0, 0.05, 0.0)), albedo=_albedo()),
                          rotation=half_turn_z)
    assert _colour_box(about_pivot, RED)[:2] == (0, 31)  # centre (0,0) → (0, 0.1): 20 px up, clipped at the top
    roll = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))  # 90° about +Z: −X goes to −Y (down)
    rolled = _render(SimpleNamespace(mesh=_mesh(), albedo=_albedo()), rotation=roll)
    assert _colour_box(rolled, RED)[:2] == (32, 51)
    shifted = _render(SimpleNamespace(mesh=_mesh(), albedo=_albedo()), translation=(0.05, 0.0, 0.0))
    assert _colour_box(shifted, RED)[2:] == (22, 41)


def test_back_of_the_head_is_culled():
    image = _render(SimpleNamespace(mesh=_mesh(), albedo=_albedo()), rotation=(0.0, 0.0, 1.0, 0.0))
    assert np.all(image == np.array(BG, np.uint8))


def test_shading_and_background_image():
    bundle = SimpleNamespace(mesh=_mesh(), albedo=np.full((4, 4, 3), 200, np.uint8))
    camera = Camera.frontal(100.0, SIZE, SIZE, 0.5)
    background = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3)).astype(np.uint8)
    turned = (math.cos(0.5), 0.0, math.sin(0.5), 0.0)  # 57° about +Y
    image = render_avatar(bundle, np.zeros(52), turned, (0, 0, 0), camera, background)
    assert np.array_equal(image[0], background[0])
    centre = image[SIZE // 2, SIZE // 2].astype(float)
    assert 200 * (0.35 + 0.65 * math.cos(1.0)) - 6 < centre[0] < 200 * (0.35 + 0.65 * math.cos(1.0)) + 6


def test_round_trip_through_a_written_bundle(tmp_path):
    from invertavatar.io.bundle import Bundle, read_bundle, write_bundle

    bundle = Bundle(manifest={"mode": "fit"}, mesh=_mesh(), albedo=_albedo(),
                    coverage=np.full((16, 16), 255, np.uint8))
    write_bundle(tmp_path / "plane.avatar", bundle)
    image = _render(read_bundle(tmp_path / "plane.avatar"))
    assert _colour_box(image, BLUE) == (12, 51, 32, 51)


@pytest.mark.parametrize("kwargs, word", [
    (dict(arkit=np.zeros(51)), "arkit"),
    (dict(rotation=(0, 0, 0, 0)), "rotation"),
    (dict(translation=(0, np.nan, 0)), "translation"),
])
def test_bad_pose_inputs_are_refused(kwargs, word):
    with pytest.raises(InvertAvatarError) as err:
        _render(SimpleNamespace(mesh=_mesh(), albedo=_albedo()), **kwargs)
    assert err.value.code == "invalid_render_input" and word in err.value.message and err.value.hint


def test_bad_background_is_refused():
    bundle = SimpleNamespace(mesh=_mesh(), albedo=_albedo())
    with pytest.raises(InvertAvatarError):
        render_avatar(bundle, np.zeros(52), (1, 0, 0, 0), (0, 0, 0), Camera.frontal(100.0, 8, 8, 0.5), (1, 2))
