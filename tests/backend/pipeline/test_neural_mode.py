"""Neural mode through the pipeline: the keyframes feed an inversion session whose state the bundle keeps.

The checkpoints here are the `tiny` configuration with random weights: this checks the mechanism (inputs, state,
refinement, messages), not the quality of a trained model.
"""

from __future__ import annotations

import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.neural_stage import STATE_FILE


@pytest.fixture()
def tiny_checkpoints(tmp_path, monkeypatch):
    from invertavatar.neural.checkpoints import save_prior
    from invertavatar.neural.config import tiny_config
    from invertavatar.neural.inversion.checkpoints import save_encoders
    from invertavatar.neural.inversion.config import tiny_encoder_config
    from invertavatar.neural.inversion.model import InversionNet
    from invertavatar.neural.prior.generator import Next3DGenerator

    torch.manual_seed(0)
    folder = tmp_path / "checkpoints"
    generator = Next3DGenerator(tiny_config())
    save_prior(folder / "prior-tiny.safetensors", generator)
    save_encoders(folder / "encoders.safetensors", InversionNet(generator, tiny_encoder_config()))
    monkeypatch.setenv("INVERTAVATAR_CHECKPOINTS", str(folder))
    return folder


def test_neural_mode_keeps_and_continues_the_session(tiny_checkpoints, synthetic_views, tmp_path):
    first = run_job(JobSpec([synthetic_views[0][0]], tmp_path / "n.avatar", mode="neural", texture_size=128))
    bundle = read_bundle(first.bundle)
    assert bundle.manifest["mode"] == "neural" and bundle.manifest["metrics"]["neural_frames"] == 1
    state_one = bundle.state[STATE_FILE]
    run_job(JobSpec([synthetic_views[1][0]], tmp_path / "n.avatar", refine=tmp_path / "n.avatar", mode="neural",
                    texture_size=128))
    refined = read_bundle(tmp_path / "n.avatar")
    assert refined.state[STATE_FILE] != state_one  # the GRU state moved on with the new frame
    assert refined.manifest["frames"]["used"] == 2


def test_missing_encoders_are_named(tiny_checkpoints, synthetic_views, tmp_path):
    (tiny_checkpoints / "encoders.safetensors").unlink()
    with pytest.raises(InvertAvatarError) as info:
        run_job(JobSpec([synthetic_views[0][0]], tmp_path / "n.avatar", mode="neural"))
    assert "encoders.safetensors" in info.value.message and "fit" in info.value.hint
    assert not (tmp_path / "n.avatar").exists()


@pytest.mark.parametrize("mode, grouping", [("eval", "stream"), ("official", "official")])
def test_keyframes_are_inverted_together_with_the_weights_grouping(tiny_checkpoints, synthetic_views, tmp_path,
                                                                   monkeypatch, mode, grouping):
    """All keyframes of a job reach the session in one call; converted official few-shot weights (official
    BatchNorm mode) get the reference's grouping of 4 interleaved frames, our own encoders one frame per call."""
    from invertavatar.neural.inversion import session as session_module
    from invertavatar.neural.inversion.batchnorm import set_batchnorm_mode
    from invertavatar.neural.inversion.checkpoints import load_encoders, save_encoders
    from invertavatar.neural.checkpoints import load_prior

    encoders = tiny_checkpoints / "encoders.safetensors"
    net = load_encoders(encoders, load_prior(tiny_checkpoints / "prior-tiny.safetensors"))
    set_batchnorm_mode(net, mode)
    save_encoders(encoders, net)
    calls = []
    original = session_module.InversionSession.add_frames

    def spy(self, frames):
        calls.append((self.grouping, frames.length))
        return original(self, frames)

    monkeypatch.setattr(session_module.InversionSession, "add_frames", spy)
    inputs = [path for path, _ in synthetic_views[:3]]
    result = run_job(JobSpec(inputs, tmp_path / "g.avatar", mode="neural", texture_size=128, accept_any_face=True))
    assert read_bundle(result.bundle).manifest["metrics"]["neural_frames"] == 3
    assert calls[0] == (grouping, 3)
