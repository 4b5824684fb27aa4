"""Fixtures: a tiny inversion model with random weights and a few synthetic frames of one identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.neural.config import tiny_config
from invertavatar.neural.inversion.config import tiny_encoder_config
from invertavatar.neural.inversion.model import InversionNet
from invertavatar.neural.prior.generator import Next3DGenerator
from invertavatar.neural.synthetic_data import SyntheticRenderer, random_identity


@pytest.fixture(scope="session")
def tiny_net():
    torch.manual_seed(0)
    net = InversionNet(Next3DGenerator(tiny_config()), tiny_encoder_config()).eval()
    return net


@pytest.fixture(scope="session")
def frames(ict_model):
    rng = np.random.default_rng(3)
    renderer = SyntheticRenderer(ict_model, tiny_config())
    return renderer.clip(random_identity(ict_model, rng), 8, rng)
