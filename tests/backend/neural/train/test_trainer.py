"""Training: a few steps of every stage reduce the loss; resuming continues the same run; bad configs fail."""

from __future__ import annotations

import json

import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.train.config import TrainConfig, load_train_config
from invertavatar.neural.train.trainer import Trainer


def _config(tmp_path, stage: str, **kw) -> TrainConfig:
    base = dict(stage=stage, size="tiny", out_dir=str(tmp_path / stage), steps=6, batch=2, lr=1e-3, seed=1,
                resume=False, clip_lengths=(2, 3), chunk=2, checkpoint_every=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("stage", ["prior", "coarse", "fine", "recurrent"])
def test_few_steps_reduce_loss(tmp_path, tiny_data, stage):
    torch.set_num_threads(1)
    trainer = Trainer(_config(tmp_path, stage), tiny_data, torch.device("cpu"))
    before = trainer.eval_loss()
    trainer.run()
    after = trainer.eval_loss()
    assert after < before, (stage, before, after)
    product = "prior.safetensors" if stage == "prior" else "encoders.safetensors"
    assert (tmp_path / stage / product).is_file()


@pytest.mark.parametrize("stage", ["coarse", "recurrent"])
def test_resume_continues_the_same_run(tmp_path, tiny_data, stage):
    torch.set_num_threads(1)
    straight = Trainer(_config(tmp_path / "a", stage, steps=4), tiny_data, torch.device("cpu"))
    straight.run()
    first = Trainer(_config(tmp_path / "b", stage, steps=2), tiny_data, torch.device("cpu"))
    first.run()
    resumed = Trainer(_config(tmp_path / "b", stage, steps=4, resume=True), tiny_data, torch.device("cpu"))
    assert resumed.step_index == 2
    resumed.run()
    assert resumed.history == pytest.approx(straight.history, rel=1e-5)
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_config_errors(tmp_path):
    with pytest.raises(InvertAvatarError):
        TrainConfig(stage="sideways")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"stage": "coarse", "stepz": 3}))
    with pytest.raises(InvertAvatarError) as err:
        load_train_config(path)
    assert "stepz" in err.value.message
    path.write_text(json.dumps({"steps": 3}))
    assert load_train_config(path, "fine").stage == "fine"
    with pytest.raises(InvertAvatarError) as err:
        load_train_config(tmp_path / "missing.json")
    assert err.value.code == "missing_file"


def test_unavailable_losses_are_refused(tmp_path, tiny_data):
    cfg = _config(tmp_path, "coarse", losses={"l1": 1.0, "lpips": 0.5})
    with pytest.raises(InvertAvatarError) as err:
        Trainer(cfg, tiny_data, torch.device("cpu"))
    assert err.value.code == "loss_unavailable"
