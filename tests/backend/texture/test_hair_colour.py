"""A hair colour picked by the user becomes the unseen scalp's tone (CLI parsing and the baked atlas)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from invertavatar.cli.reconstruct_cmd import hair_colour
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.texture.atlas import SLOTS, slot_pixels


def test_hair_colour_parses_hex_and_triples():
    assert hair_colour("#ff8000") == (1.0, 128 / 255, 0.0)
    assert hair_colour("59, 42, 32") == (59 / 255, 42 / 255, 32 / 255)
    for bad in ("#ff80", "1,2", "300,0,0", "brown"):
        with pytest.raises(argparse.ArgumentTypeError):
            hair_colour(bad)


def test_the_back_of_the_head_takes_the_picked_hair_colour(astronaut_result, tmp_path):
    photo = astronaut_result[0].bundle.parent / "astronaut.png"
    picked = (0.2, 0.12, 0.08)
    bundle = read_bundle(run_job(JobSpec([photo], tmp_path / "h.avatar", hair_colour=picked)).bundle)
    default = read_bundle(astronaut_result[0].bundle)
    rows, cols = slot_pixels(SLOTS["back_head"], bundle.albedo.shape[0])
    tile = bundle.albedo[rows, cols].astype(float) / 255
    top = tile[: tile.shape[0] // 8, tile.shape[1] // 3: 2 * tile.shape[1] // 3].reshape(-1, 3)  # the crown
    np.testing.assert_allclose(np.median(top, 0), picked, atol=0.03)
    default_top = default.albedo[rows, cols][: tile.shape[0] // 8].reshape(-1, 3).astype(float) / 255
    assert np.abs(np.median(default_top, 0) - picked).max() > 0.2  # the default is a scalp tone, not that
