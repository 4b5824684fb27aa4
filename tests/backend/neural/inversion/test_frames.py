"""UV unwrap and frame building: visibility follows the pose; visible texels sample the head, not the background."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.config import tiny_config
from invertavatar.neural.inversion.frames import frame_from_fit
from invertavatar.neural.synthetic_data import SyntheticRenderer, random_identity


@pytest.fixture(scope="module")
def renderer(ict_model):
    return SyntheticRenderer(ict_model, tiny_config())


def test_visibility_and_sampling(ict_model, renderer):
    rng = np.random.default_rng(0)
    person = random_identity(ict_model, rng)
    neutral = np.zeros(ict_model.n_expression, np.float32)
    front = renderer.frame(person, rng, expression=neutral, pose=(0.0, 0.0, 0.0))
    side = renderer.frame(person, rng, expression=neutral, pose=(1.0, 0.0, 0.0))
    vis_front, vis_side = front.uv_visible[0, 0], side.uv_visible[0, 0]
    assert 0.2 < vis_front.mean() < 0.9
    assert vis_side.sum() < 0.8 * vis_front.sum()  # turning the head hides part of the face
    # Visible texels land inside the image and on the head: they differ from the flat background colour.
    grid = front.uv_grid[0, 0][vis_front > 0]
    assert grid.abs().max() <= 1.0
    sampled = F.grid_sample(front.image[0], front.uv_grid[0], align_corners=False)[0].permute(1, 2, 0)
    background = front.image[0, 0, :, 0, 0]
    on_head = (sampled[vis_front > 0] - background).abs().amax(-1)
    assert (on_head > 0.02).float().mean() > 0.95


def test_frame_from_fit_rejects_non_square(ict_model, renderer):
    vertices = ict_model.evaluate(None, None)[0]
    with pytest.raises(InvertAvatarError):
        frame_from_fit(renderer.condition, np.zeros((64, 48, 3), np.uint8), vertices, None)
