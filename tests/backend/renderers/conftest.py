"""Fixtures: tiny neural checkpoints with fixed random weights, and avatar bundles with and without a neural state.

The neural bundle is a real inversion state: one synthetic frame of a random ICT identity streamed into a session
of the tiny networks. Random weights check the mechanism (conditioning, cameras, fusion), not the looks.
"""

from __future__ import annotations

import pytest
import torch

from invertavatar.io.bundle import write_bundle
from invertavatar.renderers.synthetic import synthetic_bundles


def make_tiny_checkpoints(folder):
    """Prior + encoders of the tiny configuration with fixed random weights (seed 0), saved in ``folder``."""
    from invertavatar.neural.checkpoints import save_prior
    from invertavatar.neural.config import tiny_config
    from invertavatar.neural.inversion.checkpoints import save_encoders
    from invertavatar.neural.inversion.config import tiny_encoder_config
    from invertavatar.neural.inversion.model import InversionNet
    from invertavatar.neural.prior.generator import Next3DGenerator

    torch.manual_seed(0)
    generator = Next3DGenerator(tiny_config())
    net = InversionNet(generator, tiny_encoder_config())
    save_prior(folder / "prior-tiny.safetensors", generator)
    save_encoders(folder / "encoders.safetensors", net)
    return net.eval()


@pytest.fixture(scope="module")
def neural_setup(tmp_path_factory, ict_model):
    """(checkpoint folder, fit bundle path, neural bundle path) with INVERTAVATAR_CHECKPOINTS pointing there."""
    folder = tmp_path_factory.mktemp("checkpoints")
    net = make_tiny_checkpoints(folder)
    fit, neural = synthetic_bundles(ict_model, net)
    paths = folder.parent / "fit.avatar", folder.parent / "neural.avatar"
    write_bundle(paths[0], fit, overwrite=True)
    write_bundle(paths[1], neural, overwrite=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INVERTAVATAR_CHECKPOINTS", str(folder))
        yield folder, paths[0], paths[1]
