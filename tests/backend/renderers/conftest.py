"""Fixtures: tiny neural checkpoints with fixed random weights, and avatar bundles with and without a neural state.

The neural bundle is a real inversion state: one synthetic frame of a random ICT identity streamed into a session
of the tiny networks. Random weights check the mechanism (conditioning, cameras, fusion), not the looks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invertavatar.io.bundle import Bundle, write_bundle


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


def make_bundles(model, net, rng_seed: int = 5) -> tuple[Bundle, Bundle]:
    """(fit-only bundle, neural bundle) of one random identity; the neural one carries a one-frame session."""
    from invertavatar.neural.inversion.session import InversionSession
    from invertavatar.neural.synthetic_data import SyntheticRenderer, random_identity
    from invertavatar.pipeline.avatar_mesh import mesh_arrays

    rng = np.random.default_rng(rng_seed)
    person = random_identity(model, rng)
    session = InversionSession(net, grouping="stream")
    session.add_frames(SyntheticRenderer(model, net.prior_config).frame(person, rng, pose_range=0.0))
    mesh = mesh_arrays(model, person.identity)
    albedo = np.zeros((256, 256, 3), np.uint8)
    albedo[:] = (190, 140, 120)
    albedo[:, 128:] = (120, 150, 190)  # back of the head blue: the two renderers must not look alike
    head = {"id": model.name, "checksum": model.checksum}
    common = dict(mesh=mesh, albedo=albedo, coverage=np.full((256, 256), 255, np.uint8))
    fit = Bundle(manifest={"mode": "fit", "head_model": head}, **common)
    neural = Bundle(manifest={"mode": "neural", "head_model": head},
                    state={"neural_session.safetensors": session.state_bytes()}, **common)
    return fit, neural


@pytest.fixture(scope="module")
def neural_setup(tmp_path_factory, ict_model):
    """(checkpoint folder, fit bundle path, neural bundle path) with INVERTAVATAR_CHECKPOINTS pointing there."""
    folder = tmp_path_factory.mktemp("checkpoints")
    net = make_tiny_checkpoints(folder)
    fit, neural = make_bundles(ict_model, net)
    paths = folder.parent / "fit.avatar", folder.parent / "neural.avatar"
    write_bundle(paths[0], fit, overwrite=True)
    write_bundle(paths[1], neural, overwrite=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INVERTAVATAR_CHECKPOINTS", str(folder))
        yield folder, paths[0], paths[1]
