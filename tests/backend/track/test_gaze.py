"""Gaze from the iris landmarks (track/gaze.py): the iris pixel of an eye turned by a known gaze gives that gaze
back."""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.detect import Detection
from invertavatar.detect.landmark_schemes import LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER
from invertavatar.render.avatar import gaze_matrix
from invertavatar.texture.eyes import rest_gaze
from invertavatar.track.gaze import estimate_gaze
from invertavatar.track.tracker import FLIP, FrameFit


def test_the_iris_pixel_of_a_known_gaze_gives_that_gaze(ict_model):
    model = ict_model
    identity = np.zeros(model.n_identity)
    height = width = 512
    focal, rotation, translation = 900.0, FLIP.numpy().astype(np.float64), np.array([0.01, -0.02, 0.6])
    vertices = model.evaluate(torch.zeros(1, model.n_identity))[0].numpy()
    wanted = {"eye_L": (0.12, -0.2), "eye_R": (-0.05, 0.15)}  # (pitch, yaw) radians
    landmarks = np.zeros((478, 2), np.float32)
    for name, region, iris in (("eye_L", "eyeball_left", LEFT_IRIS_CENTER),
                               ("eye_R", "eyeball_right", RIGHT_IRIS_CENTER)):
        # The iris pixel: the painted iris (where it looks at rest) turned about the eye bone (the eyeball's centre)
        # by the wanted gaze, as the renderer turns it.
        centre = model.rig.heads[model.rig.names.index(name)]
        ball = vertices[model.regions[region]]
        radius = np.linalg.norm(ball[np.argmax(ball[:, 2])] - centre)
        rest_pitch, rest_yaw = rest_gaze(model)[name]
        resting = np.array([np.sin(rest_yaw) * np.cos(rest_pitch), np.sin(rest_pitch),
                            np.cos(rest_yaw) * np.cos(rest_pitch)])
        direction = gaze_matrix(*wanted[name]).numpy() @ resting
        cam = rotation @ (centre + radius * direction) + translation
        landmarks[iris] = focal * cam[:2] / cam[2] + [width / 2, height / 2] - 0.5
    detection = Detection(np.array([0, 0, width, height], np.float32), landmarks, None, "mediapipe478", None, None, 1)
    fit = FrameFit(0, 0.0, "", (height, width), rotation, translation, np.zeros(model.n_expression),
                   np.zeros(52), focal, 0.0)
    gaze = estimate_gaze(model, identity, fit, detection)
    for name, (pitch, yaw) in wanted.items():
        assert np.allclose(gaze[name], [pitch, yaw], atol=2e-3), (name, gaze[name])
