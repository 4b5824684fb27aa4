"""Preview renders through the API with a real bundle (a small textured sphere written by io.bundle) and the real
avatar renderer."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.io.bundle import Bundle, write_bundle
from invertavatar.server.app import create_app
from invertavatar.render.framing import portrait_camera

from .conftest import GatedRunner

TOKEN = "p" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sphere_bundle(rows: int = 12, cols: int = 16, radius: float = 0.1) -> Bundle:
    """A UV sphere 'head' whose jawOpen shape pulls the lower half down; a two-colour texture (left/right)."""
    lat = np.linspace(0, np.pi, rows + 1)
    lon = np.linspace(-np.pi, np.pi, cols + 1)
    grid_lat, grid_lon = np.meshgrid(lat, lon, indexing="ij")
    vertices = np.stack([radius * np.sin(grid_lat) * np.sin(grid_lon), radius * np.cos(grid_lat),
                         radius * np.sin(grid_lat) * np.cos(grid_lon)], -1).reshape(-1, 3).astype(np.float32)
    uv = np.stack([grid_lon / (2 * np.pi) + 0.5, 1 - grid_lat / np.pi], -1).reshape(-1, 2).astype(np.float32)
    index = np.arange((rows + 1) * (cols + 1)).reshape(rows + 1, cols + 1)
    faces = np.stack([index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], -1).reshape(-1, 4)
    n = len(vertices)
    deltas = np.zeros((52, n, 3), np.float32)
    deltas[ARKIT_NAMES.index("jawOpen"), vertices[:, 1] < 0, 1] = -0.05
    albedo = np.zeros((32, 64, 3), np.uint8)
    albedo[:, :32] = (200, 40, 40)
    albedo[:, 32:] = (40, 40, 200)
    mesh = {
        "vertices": vertices, "faces": faces.astype(np.int32), "uv": uv, "face_uv": faces.astype(np.int32),
        "face_material": np.zeros(len(faces), np.int16), "material_names": np.array(["M_Face"]),
        "expression_names": np.array(ARKIT_NAMES), "expression_deltas": deltas,
        "expression_available": np.ones(52, bool),
        "bone_names": np.array(["root", "neck", "head", "jaw", "eye_L", "eye_R"]),
        "bone_parents": np.array([-1, 0, 1, 2, 2, 2], np.int32),
        "bone_heads": np.zeros((6, 3), np.float32), "bone_tails": np.tile([0, 0.1, 0], (6, 1)).astype(np.float32),
        "vertex_weights": np.tile(np.array([0, 0, 1, 0, 0, 0], np.float32), (n, 1)),
    }
    return Bundle(manifest={"mode": "fit", "head_model": {"id": "test", "checksum": "0"},
                            "frames": {"seen": 1, "used": 1, "skipped": 0}, "coverage": 1.0},
                  mesh=mesh, albedo=albedo, coverage=np.full((32, 64), 255, np.uint8))


@pytest.fixture
def avatar(config):
    runner = GatedRunner()
    app = create_app(config, TOKEN, runner)
    with TestClient(app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False) as client:
        avatar_id = uuid.uuid4().hex
        folder = app.state.service.worker.avatar_dir(avatar_id)
        write_bundle(folder, sphere_bundle())
        app.state.service.store.put_avatar(avatar_id, 1, 1)
        yield client, avatar_id


def render(client, avatar_id, **body):
    response = client.post(f"/v1/avatars/{avatar_id}/render", json={"width": 96, "height": 80, **body},
                           headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def test_render_shows_the_avatar_and_follows_expression_and_yaw(avatar):
    client, avatar_id = avatar
    neutral = render(client, avatar_id, background=[0, 1, 0])
    assert neutral.shape == (80, 96, 3)
    green = (neutral[..., 1] > 200) & (neutral[..., 0] < 50)
    assert green[0, 0] and green[-1, -1]  # corners show the background
    assert (~green).mean() > 0.2  # the sphere covers a good part of the frame
    assert not green[40, 48]  # ...and its centre
    jaw = render(client, avatar_id, background=[0, 1, 0], arkit={"jawOpen": 1.0})
    assert np.abs(jaw - neutral).sum() > 0  # the shape moved
    left = render(client, avatar_id, background=[0, 1, 0], yaw=90)
    right = render(client, avatar_id, background=[0, 1, 0], yaw=-90)
    # x > 0 on the sphere has longitude in (0, π), so u > 0.5: the blue half of the texture. A camera orbited to
    # +90° (towards +X) must see blue in the middle of the frame, one at −90° red.
    assert left[40, 48, 2] > 2 * left[40, 48, 0]
    assert right[40, 48, 0] > 2 * right[40, 48, 2]


def test_render_of_a_deleted_avatar_is_404(avatar):
    client, avatar_id = avatar
    assert client.delete(f"/v1/avatars/{avatar_id}", headers=AUTH).status_code == 204
    response = client.post(f"/v1/avatars/{avatar_id}/render", json={}, headers=AUTH)
    assert response.status_code == 404 and response.json()["error"]["code"] == "avatar_not_found"


def test_portrait_camera_frames_the_head():
    vertices = sphere_bundle().mesh["vertices"]
    import torch

    for yaw in (0.0, 45.0, -120.0):
        camera = portrait_camera(vertices, 200, 100, yaw)
        screen = camera.project(torch.from_numpy(vertices)[None])[0]
        assert screen[:, 0].min() > 0 and screen[:, 0].max() < 200
        assert screen[:, 1].min() > 0 and screen[:, 1].max() < 100
        assert (screen[:, 2] > 0).all()
