"""The albedo renderer draws a bundle's hair: over the scalp, not over the face, in hair.json's colour, moving with
the head; a bundle without hair renders as before; the preview endpoint and reenactment show it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.headmodel.base import split_polygons
from invertavatar.io.bundle import Bundle, read_bundle, write_bundle
from invertavatar.render.avatar import PREVIEW_HIDDEN_MATERIALS, posed_vertices, render_avatar
from invertavatar.render.framing import portrait_camera
from invertavatar.render.synthetic_hair import synthetic_groom, synthetic_hair_params
from invertavatar.render.textured import render_textured
from invertavatar.renderers import render
from invertavatar.renderers.neural import fold_head_pose, head_pivot

SIZE = 160
SKIN = (190, 140, 120)
BG = (128, 128, 128)
ROOT = (0.05, 0.03, 0.02)  # linear, dark brown


def _srgb(linear):
    c = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055) * 255.0


@pytest.fixture(scope="module")
def mesh(ict_model):
    from invertavatar.pipeline.avatar_mesh import mesh_arrays

    return mesh_arrays(ict_model, np.zeros(ict_model.identity_basis.shape[0], np.float32))


def _bundle(mesh, hair=None, params=None):
    albedo = np.zeros((64, 64, 3), np.uint8)
    albedo[:] = SKIN
    return Bundle(manifest={"mode": "fit"}, mesh=mesh, albedo=albedo, coverage=np.full((64, 64), 255, np.uint8),
                  hair=hair, hair_params=params)


@pytest.fixture(scope="module")
def groom(mesh):
    return synthetic_groom(mesh, guides=250)


@pytest.fixture(scope="module")
def camera(mesh):
    return portrait_camera(mesh["vertices"], SIZE, SIZE)


def _flat(bundle, camera, **kwargs):
    """Unlit render (albedo only), so pixel values can be predicted."""
    return render_avatar(bundle, np.zeros(52), np.array([1.0, 0, 0, 0]), np.zeros(3), camera, BG, shading=False,
                         **kwargs)


def _hair_mask(image, root=ROOT, spread=0.08):
    """Pixels whose colour is a strand of ``root`` (linear) brightened or darkened by at most ``spread``
    (``random_color``): in the sRGB range of root·(1 ± spread), ±1 level for the 8-bit rounding."""
    low, high = _srgb(np.asarray(root) * (1 - spread)) - 1.0, _srgb(np.asarray(root) * (1 + spread)) + 1.0
    return np.all((image >= low) & (image <= high), axis=-1)


def _box(camera, points, pad=0):
    screen = camera.project(torch.as_tensor(points, dtype=torch.float32)[None])[0].numpy()
    (c0, r0), (c1, r1) = np.floor(screen[:, :2].min(0)).astype(int), np.ceil(screen[:, :2].max(0)).astype(int)
    return max(r0 - pad, 0), r1 + pad, max(c0 - pad, 0), c1 + pad


def test_hair_covers_the_scalp_in_its_colour(mesh, groom, camera):
    bald = _flat(_bundle(mesh), camera)
    params = synthetic_hair_params(ROOT, tip=False)
    haired = _flat(_bundle(mesh, groom, params), camera)
    vertices = mesh["vertices"]
    # The crown seen from the front: skin when bald, hair now.
    crown = vertices[(vertices[:, 1] > 0.125) & (vertices[:, 2] > 0.0)]
    screen = camera.project(torch.from_numpy(crown)[None])[0].numpy()
    rows, cols = screen[:, 1].astype(int), screen[:, 0].astype(int)
    skin = np.all(bald[rows, cols] == SKIN, axis=-1)
    assert skin.sum() > 100
    assert _hair_mask(haired[rows, cols])[skin].mean() > 0.95
    # Above the head the hair's volume covers some of what was background.
    top = int(np.argmax(np.any(bald != BG, axis=(1, 2))))
    band = slice(max(top - 4, 0), top)
    assert np.all(bald[band] == BG) and _hair_mask(haired[band]).sum() > 10
    # Every pixel that changed is hair coloured (nothing else is drawn).
    changed = np.any(haired != bald, axis=-1)
    assert changed.sum() > 500 and _hair_mask(haired)[changed].mean() > 0.99


def test_the_face_is_unchanged(mesh, groom, camera, ict_model):
    bald = _flat(_bundle(mesh), camera)
    haired = _flat(_bundle(mesh, groom, synthetic_hair_params(ROOT)), camera)
    # Inner brows, eyes, nose and mouth (landmarks 19-24 and 27-67): not one pixel differs.
    marks = np.concatenate([ict_model.landmarks68[19:25], ict_model.landmarks68[27:]])
    r0, r1, c0, c1 = _box(camera, mesh["vertices"][marks], pad=1)
    assert r1 - r0 > 30 and c1 - c0 > 30
    assert np.array_equal(haired[r0:r1, c0:c1], bald[r0:r1, c0:c1])


def test_hair_colour_follows_hair_json(mesh, groom, camera):
    def hair_pixels(root):
        image = _flat(_bundle(mesh, groom, synthetic_hair_params(root, tip=False)), camera).astype(float)
        return image, _hair_mask(image, root)

    base, base_mask = hair_pixels(ROOT)
    dark, dark_mask = hair_pixels(tuple(0.4 * np.asarray(ROOT)))
    light, light_mask = hair_pixels((0.4, 0.3, 0.15))  # blond
    both = base_mask & dark_mask & light_mask  # the same strands in all three
    assert both.sum() > 500
    assert np.all(dark[both].mean(0) < base[both].mean(0) - 10)
    assert np.all(light[both].mean(0) > base[both].mean(0) + 60)


def test_tip_colour_and_shading_show(mesh, groom, camera):
    """The lit default: brighter towards the tips (lighter tip melanin, root shadow), still dark brown overall."""
    bundle = _bundle(mesh, groom, synthetic_hair_params(ROOT))
    lit = render(bundle, camera=camera, background=BG).image.astype(float)
    bald = render(_bundle(mesh), camera=camera, background=BG).image.astype(float)
    hair = np.any(lit != bald, axis=-1)
    assert hair.sum() > 500
    rgb = lit[hair].mean(0)
    assert rgb[0] > rgb[1] > rgb[2] and rgb.max() < 120  # brown, dark
    # Tips hang at the sides below the ears; roots and the strands near them are on the crown.
    r0, r1, c0, c1 = _box(camera, mesh["vertices"][(mesh["vertices"][:, 1] > 0.13)])
    crown = lit[r0:r1, c0:c1][hair[r0:r1, c0:c1]].mean()
    low = lit[int(0.55 * SIZE):][hair[int(0.55 * SIZE):]]
    assert low.size and low.mean() > crown


def test_posing_the_head_moves_the_hair(mesh, groom, camera):
    bundle = _bundle(mesh, groom, synthetic_hair_params(ROOT, tip=False))
    half = math.radians(25) / 2
    rotation = np.array([math.cos(half), 0.0, math.sin(half), 0.0])
    still = _hair_mask(_flat(bundle, camera))
    turned = _hair_mask(render_avatar(bundle, np.zeros(52), rotation, np.zeros(3), camera, BG, shading=False))
    # The same picture as the unposed head seen by the camera folded the other way: the hair went with the head.
    folded = fold_head_pose(camera, rotation, np.zeros(3), head_pivot(mesh))
    expected = _hair_mask(_flat(bundle, folded))

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert iou(turned, expected) > 0.95
    assert iou(turned, still) < 0.7


def test_beard_follows_the_jaw(mesh, camera):
    hair = synthetic_groom(mesh, guides=150, beard=True)
    params = synthetic_hair_params(ROOT, tip=False)
    params["groups"]["beard"]["root_colour"] = [0.4, 0.05, 0.02]  # red, to tell it from the scalp hair
    bundle = _bundle(mesh, hair, params)
    jaw = np.zeros(52)
    jaw[ARKIT_NAMES.index("jawOpen")] = 1.0

    def beard_rows(arkit):
        image = render_avatar(bundle, arkit, np.array([1.0, 0, 0, 0]), np.zeros(3), camera, BG, shading=False)
        rows, _ = np.nonzero(_hair_mask(image, (0.4, 0.05, 0.02)))
        assert rows.size > 100
        return rows.mean()

    shift = beard_rows(jaw) - beard_rows(np.zeros(52))
    assert shift > 3  # pixels down (the chin drops ~2 cm at jawOpen = 1, ~12 px here)


def test_a_bundle_without_hair_renders_as_before(mesh, groom, camera):
    bald = _bundle(mesh)
    image = render_avatar(bald, np.zeros(52), np.array([1.0, 0, 0, 0]), np.zeros(3), camera, BG)
    # What render_avatar drew before hair existed: the textured head alone.
    faces, face_uv = mesh["faces"], mesh["face_uv"]
    names = list(mesh["material_names"])
    shown = ~np.isin(mesh["face_material"], [names.index(n) for n in PREVIEW_HIDDEN_MATERIALS])
    triangles, _, uv_triangles = split_polygons(faces[shown], face_uv[shown])
    vertices = posed_vertices(mesh, np.zeros(52, np.float32), np.array([1.0, 0, 0, 0]), np.zeros(3))
    with torch.no_grad():
        reference, _ = render_textured(vertices, triangles, torch.from_numpy(mesh["uv"]), uv_triangles,
                                       torch.from_numpy(bald.albedo.astype(np.float32) / 255.0), camera,
                                       background=torch.tensor(BG, dtype=torch.float32) / 255.0, shading=True)
    assert np.array_equal(image, (reference[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy())
    # A bundle with hair asked to leave it out draws exactly that too.
    haired = _bundle(mesh, groom, synthetic_hair_params())
    assert np.array_equal(render(haired, camera=camera, background=BG, hair=False).image, image)
    assert not np.array_equal(render(haired, camera=camera, background=BG).image, image)


def test_preview_endpoint_and_reenactment_show_the_hair(mesh, groom, tmp_path):
    import io

    import av
    from PIL import Image

    from invertavatar.renderers.reenact import animate
    from invertavatar.server.preview import PreviewRenderer
    from invertavatar.server.schemas import RenderRequest

    path = write_bundle(tmp_path / "hair.avatar", _bundle(mesh, groom, synthetic_hair_params(ROOT)))
    bundle = read_bundle(path)
    assert bundle.hair is not None
    png, renderer = PreviewRenderer().render_png("a", path, RenderRequest(width=96, height=96))
    served = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    camera = portrait_camera(mesh["vertices"], 96, 96)
    drawn = render(bundle, camera=camera, background=BG).image
    bald = render(bundle, camera=camera, background=BG, hair=False).image
    assert renderer == "albedo" and np.array_equal(served, drawn) and not np.array_equal(served, bald)

    tracks = tmp_path / "tracks.json"
    tracks.write_text(json.dumps({"fps": 10.0, "arkit_names": list(ARKIT_NAMES),
                                  "frames": [{"index": i, "arkit": [0.0] * 52} for i in range(2)]}))
    out = tmp_path / "drive.mp4"
    animate(path, tracks, out, size=96)
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    hair = np.any(drawn != bald, axis=-1)
    # Video coding blurs single strands; the hair region on average is the hair's, far from the skin it covers.
    assert np.abs(frame[hair] - drawn[hair]).mean() < np.abs(frame[hair] - bald[hair]).mean() / 2
