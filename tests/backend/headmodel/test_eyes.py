"""The eyes: the eyeball sphere (headmodel/eyes.py) and the painted iris (texture/eyes.py)."""

from __future__ import annotations

import cv2
import numpy as np

from invertavatar.headmodel.eyes import eyeball_sphere
from invertavatar.texture.eyes import IRIS_RADIUS_IOD, eye_tile, rest_gaze

RED, WHITE = np.array([0.8, 0.1, 0.1], np.float32), np.ones(3, np.float32)


def test_a_sphere_sampled_densely_at_the_front_with_a_cornea_gives_its_centre():
    rng = np.random.default_rng(3)
    centre, radius = np.array([0.031, 0.036, 0.080]), 0.0158
    # Three quarters of the vertices within 40° of the front (as an eyeball mesh's iris and cornea), a bulge there.
    polar = np.r_[rng.uniform(0, np.radians(40), 3000), rng.uniform(np.radians(40), np.pi, 1000)]
    azimuth = rng.uniform(0, 2 * np.pi, len(polar))
    bulge = 1.0 + 0.05 * np.clip(1 - polar / np.radians(25), 0, None)
    direction = np.c_[np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)]
    points = centre + radius * bulge[:, None] * direction
    assert np.linalg.norm(points.mean(0) - centre) > 0.004  # the mean vertex is far off: the case to handle
    sphere = eyeball_sphere(points)
    assert np.linalg.norm(sphere.centre - centre) < 0.5e-3
    assert abs(sphere.radius - radius * 1.05) < 0.5e-3  # to the cornea's apex


def test_the_painted_iris_is_one_clean_disc_of_an_adults_size(ict_model):
    from invertavatar.texture.fusion import tile_geometry

    model, size = ict_model, 256
    tile = eye_tile(model, "sclera", size, RED, WHITE)
    painted = (np.abs(tile - WHITE).max(-1) > 0.5).astype(np.uint8)
    # One disc in the tile, without holes: both eyes share these texels and paint them alike (around +Z, each eye
    # painted its own iris over the other's and the disc came out speckled).
    count, _ = cv2.connectedComponents(painted)
    contours, _ = cv2.findContours(painted, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    (_, _), enclosing = cv2.minEnclosingCircle(max(contours, key=cv2.contourArea))
    assert count == 2 and painted.sum() > 0.85 * np.pi * enclosing ** 2
    # On the eyeball the disc reaches an adult's iris radius (5.9 mm on a 64 mm eye distance), the rim included.
    geometry = tile_geometry(model, "sclera", size)
    points = (model.vertices[geometry.corners.numpy()] * geometry.bary.numpy()[..., None]).sum(1)
    left = eyeball_sphere(model.vertices[model.regions["eyeball_left"]])
    right = eyeball_sphere(model.vertices[model.regions["eyeball_right"]])
    iod = np.linalg.norm(left.centre - right.centre)
    on_left = np.isin(geometry.corners.numpy()[:, 0], model.regions["eyeball_left"])
    iris = points[on_left & painted.reshape(-1)[geometry.texel.numpy()].astype(bool)]
    axis = iris.mean(0) - left.centre
    axis /= np.linalg.norm(axis)
    offsets = iris - left.centre
    lateral = np.linalg.norm(offsets - (offsets @ axis)[:, None] * axis, axis=1)
    assert abs(lateral.max() - IRIS_RADIUS_IOD * iod) < 0.1 * IRIS_RADIUS_IOD * iod, lateral.max()


def test_icts_eyes_rest_looking_a_little_outwards_alike(ict_model):
    rest = rest_gaze(ict_model)
    (pitch_l, yaw_l), (pitch_r, yaw_r) = rest["eye_L"], rest["eye_R"]
    assert 0.05 < yaw_l < 0.15 and -0.15 < yaw_r < -0.05  # outwards: towards +X for the left eye, −X the right
    assert abs(yaw_l + yaw_r) < 0.01 and abs(pitch_l) < 0.02 and abs(pitch_r) < 0.02  # mirror images, level
