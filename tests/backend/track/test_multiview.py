"""Identity beyond landmarks (track/multiview.py) on synthetic views of a known head."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from invertavatar.track import Tracker
from invertavatar.track.multiview import KeyframeView, MultiViewConfig, refine_identity


@pytest.fixture(scope="module")
def detections(synthetic_views):
    from invertavatar.detect import make_detector

    with make_detector("mediapipe") as detector:
        return [detector.detect(view.image, path.name) for path, view in synthetic_views]


def tracked(model, synthetic_views, detections, count):
    tracker = Tracker(model)
    prior = tracker.state
    views = []
    for i, ((_, view), detection) in enumerate(zip(synthetic_views[:count], detections)):
        fit = tracker.add_frame(detection, view.image.shape[:2], index=i)
        views.append(KeyframeView(detection, fit, view.image))
    return tracker, prior, views


def test_colour_agreement_recovers_the_shape_landmarks_miss(ict_model, synthetic_views, detections, shape_error_mm):
    errors = {}
    for count in (4, 8):
        tracker, prior, views = tracked(ict_model, synthetic_views, detections, count)
        landmarks_only = shape_error_mm(tracker.identity)
        result = refine_identity(tracker, views, prior)
        errors[count] = shape_error_mm(tracker.identity)
        print(f"{count} views: landmarks {landmarks_only:.3f} mm, with colour {errors[count]:.3f} mm;",
              result.summary())
        assert result.applied
        # The finest level's robust colour cost stays about level (the coarse levels move the shape; the finest
        # one also weighs the landmarks, which the refined shape fits a little less well). Measured on this head:
        # 1.09 → 1.22 with four views since the mouth tiles carry the photo's teeth; the shape is the claim.
        assert result.photo_after < 1.15 * result.photo_before
        assert errors[count] < landmarks_only - 0.1
        assert max(result.landmark_error_after) < MultiViewConfig().max_landmark_error
    mean_shape = shape_error_mm(np.zeros(ict_model.n_identity, np.float32))
    # Measured 1.04 mm (4 views) and 0.95 mm (8 views) against 1.37 / 1.44 from landmarks and 1.62 for the mean head.
    # Past four views the refined shape levels off on this head (the views added are 43° turns, from which the
    # landmarks alone get worse); before the iris was painted at its true size it was 1.03 / 0.93. So more views must
    # not cost more than that spread:
    assert errors[8] < errors[4] + 0.1
    assert errors[8] <= 1.0 < mean_shape  # the goal


def test_too_few_keyframes_are_left_alone(ict_model, synthetic_views, detections):
    tracker, prior, views = tracked(ict_model, synthetic_views, detections, 2)
    before = tracker.state.mean.copy()
    result = refine_identity(tracker, views, prior)
    assert not result.applied and "needs 3" in result.reason
    np.testing.assert_array_equal(tracker.state.mean, before)


def test_a_refinement_that_breaks_the_landmarks_is_refused(ict_model, synthetic_views, detections):
    tracker, prior, views = tracked(ict_model, synthetic_views, detections, 3)
    # The second view's colours are another picture: agreeing with it needs a shape the landmarks reject.
    views[1] = replace(views[1], crop=np.ascontiguousarray(views[1].crop[::-1, ::-1]))
    before, rotation = tracker.state.mean.copy(), views[0].fit.rotation.copy()
    config = MultiViewConfig(weight=1e5, steps=15, max_landmark_error=0.0)
    result = refine_identity(tracker, views, prior, config)
    assert not result.applied and "landmarks" in result.reason
    np.testing.assert_array_equal(tracker.state.mean, before)
    np.testing.assert_array_equal(views[0].fit.rotation, rotation)


def test_the_refinement_steps_as_torch_adam_does():
    """The refinement's own Adam (it avoids torch.optim's 2.5 s first import) follows torch.optim.Adam's path."""
    import torch

    from invertavatar.track.multiview import _Adam

    target = torch.tensor([1.0, -2.0, 0.5])
    ours, theirs = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    other, other_theirs = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    mine = _Adam([(ours, 0.1), (other, 0.01)])
    reference = torch.optim.Adam([{"params": [theirs], "lr": 0.1}, {"params": [other_theirs], "lr": 0.01}])
    for _ in range(50):
        ((ours - target).square().sum() + other.square().sum()).backward()
        mine.step()
        reference.zero_grad()
        ((theirs - target).square().sum() + other_theirs.square().sum()).backward()
        reference.step()
    assert torch.allclose(ours, theirs, atol=1e-6) and torch.allclose(other, other_theirs, atol=1e-6)
    assert float((ours.detach() - target).abs().max()) < 0.2  # and it gets somewhere
