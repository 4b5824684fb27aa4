"""Photometric refinement: the colour difference to the fused texture falls, and the fit never gets worse."""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.detect import make_detector
from invertavatar.pipeline.job import _camera
from invertavatar.texture import TextureFusion
from invertavatar.track import Tracker
from invertavatar.track.photometric import FaceTexture, refine_photometric


def test_refinement_reduces_colour_error_against_fused_texture(ict_model, synthetic_views):
    tracker, fusion = Tracker(ict_model), TextureFusion(ict_model, 256)
    with make_detector("mediapipe") as detector:
        for index in (0, 1):
            path, view = synthetic_views[index]
            detection = detector.detect(view.image, path.name)
            fit = tracker.add_frame(detection, view.image.shape[:2])
            if index == 1:
                texture = FaceTexture(ict_model, *fusion.mean_colour("face"))
                assert texture.seen_fraction > 0.1
                before = fit.rotation.copy()
                result = refine_photometric(ict_model, tracker.identity, fit, view.image, detection.box, texture,
                                            steps=10)
                assert result.error_after < result.error_before
                assert np.abs(result.rotation - before).max() < 0.05  # a refinement, not a jump
            vertices = ict_model.evaluate(torch.from_numpy(tracker.identity).float()[None],
                                          torch.from_numpy(fit.expression).float()[None])[0].numpy()
            fusion.add_frame(view.image, vertices, _camera(fit))


def test_no_texture_seen_means_no_change(ict_model, synthetic_views):
    path, view = synthetic_views[0]
    with make_detector("mediapipe") as detector:
        detection = detector.detect(view.image, path.name)
    tracker = Tracker(ict_model)
    fit = tracker.add_frame(detection, view.image.shape[:2])
    size = 64
    empty = FaceTexture(ict_model, np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32))
    result = refine_photometric(ict_model, tracker.identity, fit, view.image, detection.box, empty, steps=3)
    np.testing.assert_array_equal(result.rotation, fit.rotation)
