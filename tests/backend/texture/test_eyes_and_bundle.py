"""On a real reconstruction (the astronaut): a blink shows lid skin, and the bundle carries both textures."""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.headmodel import ARKIT_NAMES
from invertavatar.io.bundle import read_bundle
from invertavatar.render import Camera
from invertavatar.render.avatar import posed_vertices, render_avatar

SIZE = 320


def _front(bundle) -> Camera:
    vertices = bundle.mesh["vertices"]
    centre = 0.5 * (vertices.min(0) + vertices.max(0))
    return Camera.look_at(torch.tensor([centre[0], centre[1], centre[2] + 1.0], dtype=torch.float32),
                          torch.tensor(centre, dtype=torch.float32), SIZE / 0.3, SIZE, SIZE)


def _patch(image: np.ndarray, xy: np.ndarray, radius: int = 2) -> np.ndarray:
    x, y = (int(round(v)) for v in xy)
    return image[y - radius:y + radius + 1, x - radius:x + radius + 1].reshape(-1, 3).mean(0) / 255.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb.astype(np.float32).reshape(1, 1, 3), cv2.COLOR_RGB2LAB).reshape(3)


def test_a_blink_renders_lid_skin(astronaut_result):
    bundle = read_bundle(astronaut_result[0].bundle)
    camera = _front(bundle)
    names = [str(n) for n in bundle.mesh["material_names"]]
    blink = np.zeros(52)
    blink[[ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")]] = 1.0
    rest = np.array([1.0, 0.0, 0.0, 0.0])
    closed = render_avatar(bundle, blink, rest, np.zeros(3), camera, (0, 255, 0), shading=False)
    opened = render_avatar(bundle, np.zeros(52), rest, np.zeros(3), camera, (0, 255, 0), shading=False)
    vertices = posed_vertices(bundle.mesh, np.zeros(52), rest, np.zeros(3))
    screen = camera.project(vertices[None])[0, :, :2].numpy()
    faces, parts = bundle.mesh["faces"], bundle.mesh["face_material"]
    for sclera in ("M_ScleraLeft", "M_ScleraRight"):
        ids = np.unique(faces[parts == names.index(sclera)])
        ids = ids[ids >= 0]
        front = ids[np.argsort(-vertices[ids, 2].numpy())[:20]]  # the front of the eyeball: the pupil
        eye = screen[front].mean(0)
        iod = np.abs(screen[ids, 0].max() - screen[ids, 0].min())
        cheek = _lab(_patch(closed, eye + [0.0, 0.9 * iod]))  # skin below the eye, same texture
        lid, open_eye = _lab(_patch(closed, eye)), _lab(_patch(opened, eye))
        # Lid skin: the skin's hue and saturation, and neither a dark smear nor the white of the eye (the lid
        # may be somewhat darker than the cheek: the eye socket's occlusion is not low-frequency light).
        assert np.linalg.norm(lid[1:] - cheek[1:]) < 8.0, (sclera, lid, cheek)
        assert 0.6 * cheek[0] < lid[0] < cheek[0] + 5.0, (sclera, lid, cheek)
        assert np.linalg.norm(open_eye - lid) > 15.0, (sclera, open_eye, lid)  # open, the eye itself shows


def test_bundle_keeps_the_photographed_texture_beside_the_albedo(astronaut_result):
    bundle = read_bundle(astronaut_result[0].bundle)
    assert bundle.photographed is not None and bundle.photographed.shape[0] == bundle.albedo.shape[0] // 2
    assert "textures/photographed.png" in bundle.manifest["files"]
    # Same layout: the skin tiles agree in colour on average, and differ where the photo's shading was removed.
    half = bundle.albedo[::2, ::2].astype(float)
    face = (slice(0, half.shape[0] // 2), slice(0, half.shape[1] // 2))
    difference = np.abs(half[face] - bundle.photographed[face].astype(float)).mean(-1)
    assert 1.0 < difference.mean() < 40.0
