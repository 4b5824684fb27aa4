"""A tiny synthetic dataset (2 identities x 4 frames at the tiny prior's 64 x 64)."""

from __future__ import annotations

import pytest

from invertavatar.neural.config import tiny_config
from invertavatar.neural.synthetic_data import build_dataset


@pytest.fixture(scope="session")
def tiny_data(ict_model):
    return build_dataset(ict_model, tiny_config(), identities=2, frames_per_identity=4, seed=5)
