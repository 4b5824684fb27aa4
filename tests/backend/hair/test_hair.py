"""Hair: known shapes carved back from their silhouettes, known colours fitted back, bald heads left bald, the
bundle's hair from a real photo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.hair.colour import fit_melanin, hair_albedo, hair_colour, hair_parameters, parameter_colour
from invertavatar.hair.region import HairRegion
from invertavatar.hair.stage import HairStage
from invertavatar.hair.strands import grow_guides
from invertavatar.hair.volume import HairVolume, scalp_geometry, view_depth
from invertavatar.io.bundle import read_bundle
from invertavatar.render import Camera, axis_angle_to_matrix, rasterize
from invertavatar.texture.fusion import opaque_triangles

SIZE = 192
FLIP = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


def camera(yaw: float, pitch: float = 0.0) -> Camera:
    turn = (axis_angle_to_matrix(torch.tensor([0.0, float(yaw), 0.0]))
            @ axis_angle_to_matrix(torch.tensor([float(pitch), 0.0, 0.0])))
    k = torch.tensor([[1.6 * SIZE, 0, SIZE / 2], [0, 1.6 * SIZE, SIZE / 2], [0, 0, 1.0]])
    return Camera(k, FLIP @ turn, torch.tensor([0.0, 0.0, 0.9]), SIZE, SIZE)


@pytest.fixture(scope="module")
def head(ict_model):
    neutral = ict_model.vertices.copy()
    return neutral, scalp_geometry(ict_model, neutral), opaque_triangles(ict_model)


def true_hair(geometry, thickness: float = 0.02, below_eyes: float = 0.0) -> np.ndarray:
    """Dense points of a known cap of hair: the cranium above ``below_eyes`` pushed out by up to ``thickness``."""
    cap = geometry.scalp[geometry.vertices[geometry.scalp, 1] > geometry.eye_level - below_eyes]
    base, normal = geometry.vertices[cap], geometry.normals[cap]
    layers = np.linspace(0.003, thickness, 8)
    return (base[:, None] + normal[:, None] * layers[None, :, None]).reshape(-1, 3)


def silhouette(points: np.ndarray, cam: Camera, vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Pixels where ``points`` are seen in front of the head (or beside it): the hair mask a camera would see."""
    with torch.no_grad():
        frags = rasterize(cam.project(torch.from_numpy(vertices).float()[None]),
                          torch.from_numpy(triangles.astype(np.int64)), SIZE, SIZE)
        depth, covered = frags.depth[0].numpy(), frags.mask[0].numpy()
        p = cam.project(torch.from_numpy(points).float()[None])[0].numpy()
    col, row = np.floor(p[:, 0]).astype(int), np.floor(p[:, 1]).astype(int)
    ok = (col >= 0) & (col < SIZE) & (row >= 0) & (row < SIZE)
    col, row, z = col[ok], row[ok], p[ok, 2]
    front = ~covered[row, col] | (z < depth[row, col])
    mask = np.zeros((SIZE, SIZE), bool)
    mask[row[front], col[front]] = True
    import cv2

    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0


def region(mask: np.ndarray, bald: bool = False) -> HairRegion:
    empty = np.zeros_like(mask)
    return HairRegion(1.0, mask.astype(np.float32), mask, empty, empty, empty, np.zeros(SIZE, np.float32), bald)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def carve(head, truth: np.ndarray, yaws: list[float]) -> HairVolume:
    neutral, geometry, triangles = head
    volume = HairVolume(geometry)
    for yaw in yaws:
        cam = camera(yaw)
        mask = region(silhouette(truth, cam, neutral, triangles))
        volume.add_view(mask, view_depth(mask, cam, neutral, triangles))
    return volume


def test_a_turning_clip_carves_the_known_cap_back_in_held_out_views(head):
    neutral, geometry, triangles = head
    truth = true_hair(geometry)
    volume = carve(head, truth, [np.radians(a) for a in (-90, -45, 0, 45, 90, 180)])
    occupied = volume.occupancy()
    carved = volume.centres[occupied]
    scores = [iou(silhouette(carved, camera(np.radians(a), p), neutral, triangles),
                  silhouette(truth, camera(np.radians(a), p), neutral, triangles))
              for a, p in ((20, 0.0), (-70, 0.0), (135, 0.0), (0, 0.35))]
    # Voxels are 6 mm on a 2 cm cap: the carved silhouette is a voxel wider all round.
    assert min(scores) > 0.7, scores
    assert volume.seen_fraction() > 0.9


def test_one_frontal_view_is_completed_behind_the_head_by_symmetry_and_fall(head):
    neutral, geometry, triangles = head
    truth = true_hair(geometry)
    volume = carve(head, truth, [0.0])
    carved = volume.centres[volume.occupancy()]
    back = iou(silhouette(carved, camera(np.pi), neutral, triangles),
               silhouette(truth, camera(np.pi), neutral, triangles))
    side = iou(silhouette(carved, camera(np.radians(90)), neutral, triangles),
               silhouette(truth, camera(np.radians(90)), neutral, triangles))
    assert back > 0.55 and side > 0.55, (back, side)
    assert volume.seen_fraction() < 0.9  # and it says that it did not see everything


def test_guides_grow_from_the_scalp_inside_the_volume_and_outside_the_head(head):
    neutral, geometry, triangles = head
    volume = carve(head, true_hair(geometry, 0.03, below_eyes=0.05), [np.radians(a) for a in (-90, 0, 90, 180)])
    occupied = volume.occupancy()
    guides = grow_guides(volume, occupied)
    assert guides is not None and guides.count > 100
    roots = guides.points[guides.offsets[:-1]]
    assert np.linalg.norm(roots - geometry.vertices[guides.root_vertex], axis=1).max() < 0.005
    assert np.isin(guides.root_vertex, geometry.scalp).all()
    from scipy.spatial import cKDTree

    distance, index = cKDTree(geometry.vertices[geometry.skin]).query(guides.points)
    outward = np.einsum("ij,ij->i", guides.points - geometry.vertices[geometry.skin[index]],
                        geometry.normals[geometry.skin[index]])
    assert np.mean(outward > -0.002) > 0.97  # strands lie on or above the scalp, not inside the skull
    # No longer than the silhouettes show: the cap ends 5 cm below the eyes, and so do the strands (a voxel's slack).
    assert guides.points[:, 1].min() > geometry.eye_level - 0.05 - 0.02


def test_a_bald_head_gets_no_hair(head, ict_model):
    neutral, geometry, triangles = head
    stage = HairStage(ict_model)
    stage.volume = HairVolume(geometry)
    empty = np.zeros((SIZE, SIZE), bool)
    for yaw in (-0.5, 0.0, 0.5):
        bald = region(empty, bald=True)
        stage.volume.add_view(bald, view_depth(bald, camera(yaw), neutral, triangles))
    result = stage.finish()
    assert result.arrays is None and result.manifest["found"] is False


@pytest.mark.parametrize("melanin,redness", [(0.2, 0.8), (0.5, 0.3), (0.9, 0.1), (0.98, 0.0)])
def test_melanin_fit_recovers_the_parameters_a_colour_was_made_with(melanin, redness):
    colour = hair_colour(melanin, redness)
    m, r, tint = fit_melanin(colour)
    assert np.allclose(hair_colour(m, r), colour, rtol=0.08, atol=0.004)
    assert np.allclose(tint, 1.0)
    assert abs(m - melanin) < 0.05


def test_dyed_hair_goes_into_the_tint():
    pink = np.array([0.6, 0.15, 0.35])
    params = hair_parameters(pink, None)
    assert min(params["tint"]) < 0.8
    rendered = parameter_colour(params)
    assert rendered[0] > rendered[1] and rendered[2] > rendered[1]  # pink, not brown


def test_hair_albedo_is_the_de_lit_middle_of_the_pixels():
    rng = np.random.default_rng(1)
    srgb = np.clip(rng.normal([0.3, 0.2, 0.15], 0.01, (500, 3)), 0, 1)
    highlights = np.full((200, 3), 0.95)  # sheen: lighter than the body, left to the shader
    gaps = np.full((40, 3), 0.02)
    albedo = hair_albedo(np.concatenate([srgb, highlights, gaps]), np.array([0.5, 0.5, 0.5]))
    from invertavatar.texture.albedo_level import srgb_to_linear

    assert np.allclose(albedo, 0.5 * srgb_to_linear(np.array([0.3, 0.2, 0.15])), rtol=0.15)


def test_the_astronauts_avatar_has_her_hair(astronaut_result):
    result, _ = astronaut_result
    bundle = read_bundle(result.bundle)
    assert result.manifest["hair"]["found"] is True
    assert bundle.hair is not None and "scalp" in bundle.hair_params["groups"]
    scalp = bundle.hair_params["groups"]["scalp"]
    colour = parameter_colour(scalp)
    assert colour.max() < 0.5 and colour[0] >= colour[2]  # her hair is brown, not white, not blue
    points = bundle.hair["points"]
    assert points[:, 1].max() > bundle.mesh["vertices"][:, 1].max()  # it stands above the cranium
    assert bundle.manifest["timings_s"]["hair"] > 0


def test_the_carving_is_carried_in_the_state_and_continued(head, ict_model):
    neutral, geometry, triangles = head
    truth = true_hair(geometry)
    first = HairStage(ict_model)
    first.volume = carve(head, truth, [np.radians(-45), 0.0])
    first.views = 2
    restored = HairStage(ict_model)
    restored.load_bytes(first.to_bytes())
    restored.volume = HairVolume(geometry)
    restored._restore_volume()
    assert restored.views == 2
    assert np.array_equal(restored.volume.carved, first.volume.carved)
    assert np.array_equal(restored.volume.occupancy(), first.volume.occupancy())
    # A further view (the back) carves on from there, as a refinement's keyframes do.
    cam = camera(np.pi)
    back = region(silhouette(truth, cam, neutral, triangles))
    restored.volume.add_view(back, view_depth(back, cam, neutral, triangles))
    assert (restored.volume.carved >= first.volume.carved).all() and restored.volume.seen_fraction() > \
        first.volume.seen_fraction()


def test_refining_the_astronaut_carves_with_both_jobs_keyframes(astronaut_result, tmp_path, astronaut):
    from PIL import Image

    from invertavatar.pipeline import JobSpec, run_job

    result, _ = astronaut_result
    photo = tmp_path / "astronaut_again.png"
    Image.fromarray(astronaut).save(photo)
    refined = run_job(JobSpec([photo], tmp_path / "refined.avatar", refine=result.bundle))
    assert refined.manifest["hair"]["keyframes"] == result.manifest["hair"]["keyframes"] + 1
    assert refined.manifest["hair"]["found"]
