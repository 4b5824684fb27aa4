"""The seamless fill: no step across the coverage border, the skin tone far from it, seen detail kept inside."""

from __future__ import annotations

import numpy as np

from invertavatar.texture.blend import feathered_alpha, multiband_blend, seamless_fill
from invertavatar.texture.fill import pull_push_fill

SIZE = 256
FEATHER, REACH = 8.0, 40.0


def _half_seen(seed: int = 0):
    """A tile whose left part was seen (a bright, detailed skin) and whose right part was not."""
    rng = np.random.default_rng(seed)
    colour = np.zeros((SIZE, SIZE, 3), np.float32)
    seen = np.zeros((SIZE, SIZE), bool)
    seen[:, :120] = True
    colour[seen] = np.array([0.85, 0.62, 0.5]) + 0.03 * rng.normal(size=(seen.sum(), 3))
    known = seen.astype(np.float32)
    tone = np.broadcast_to(np.array([0.55, 0.4, 0.33], np.float32), colour.shape).copy()
    extended = pull_push_fill(colour, known, tone[0, 0])
    return colour, known, extended, tone


def test_no_step_across_the_coverage_border():
    colour, known, extended, tone = _half_seen()
    filled = seamless_fill(colour, known, extended, tone, FEATHER, REACH)
    luminance = filled.mean(-1)
    # Column means remove the pixel noise: what is left is the transition from seen skin to the fill.
    profile = luminance.mean(0)
    steps = np.abs(np.diff(profile))
    drop = profile[100] - profile[-1]
    assert drop > 0.15  # the fill really goes somewhere else (the tone), so a step would be visible
    # Gradient bound: the change is spread over the reach, no two neighbouring columns differ by more than
    # about 3x the average slope of that transition (a hard paste would put the whole drop in one column).
    assert steps[110:].max() < 3.0 * drop / REACH, (steps[110:].max(), drop / REACH)
    hard = np.where(known[..., None] > 0, colour, tone).mean(-1).mean(0)
    assert np.abs(np.diff(hard))[110:130].max() > 10 * steps[110:].max()


def test_far_from_the_border_the_fill_is_the_tone_and_the_seen_part_is_kept():
    colour, known, extended, tone = _half_seen(1)
    filled = seamless_fill(colour, known, extended, tone, FEATHER, REACH)
    np.testing.assert_allclose(filled[:, 200:].mean((0, 1)), tone[0, 0], atol=0.01)
    inner = filled[:, 10:100]
    assert np.abs(inner - colour[:, 10:100]).mean() < 0.005  # detail inside the seen part survives


def test_feathered_alpha_rises_smoothly_from_the_border():
    known = np.zeros((64, 64), np.float32)
    known[:, :32] = 1.0
    alpha = feathered_alpha(known, 8.0)
    row = alpha[32]
    assert row[40:].max() == 0.0 and row[:20].min() == 1.0
    assert np.all(np.diff(row[:33]) <= 1e-6) and np.abs(np.diff(row)).max() < 0.25


def test_multiband_blend_of_identical_images_is_the_identity():
    rng = np.random.default_rng(2)
    image = rng.random((100, 90, 3)).astype(np.float32)
    alpha = rng.random((100, 90)).astype(np.float32)
    np.testing.assert_allclose(multiband_blend(image, image, alpha), image, atol=1e-4)
