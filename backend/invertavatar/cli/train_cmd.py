"""``invertavatar train {prior,coarse,fine,recurrent} --config FILE``: train the tiny or official networks."""

from __future__ import annotations

import argparse
from pathlib import Path

from invertavatar.neural.train.config import STAGES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train the neural prior or the inversion encoders on synthetic ICT renders",
        description="Stages: prior (reconstruction objective), coarse (W+ encoder), fine (texture and tri-plane "
        "U-Nets, one frame), recurrent (ConvGRU on clips, chunked truncated back-propagation). The config is a JSON "
        "file with the fields of invertavatar.neural.train.config.TrainConfig; runs resume from out_dir.")
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--config", type=Path, required=True, help="JSON training config")
    parser.add_argument("--steps", type=int, default=None, help="override the config's total step count")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from invertavatar.headmodel import load_head_model
    from invertavatar.neural.inversion.config import configs
    from invertavatar.neural.synthetic_data import build_dataset
    from invertavatar.neural.train.config import load_train_config
    from invertavatar.neural.train.trainer import Trainer

    config = load_train_config(args.config, args.stage)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    prior_config, _ = configs(config.size)
    print(f"rendering {config.identities} x {config.frames} synthetic frames ...", flush=True)
    data = build_dataset(load_head_model("ict"), prior_config, config.identities, config.frames, config.data_seed,
                         config.pose_range)
    trainer = Trainer(config, data)
    if trainer.step_index:
        print(f"resuming {config.stage} at step {trainer.step_index}", flush=True)

    def progress(step: int, loss: float) -> None:
        if step % config.log_every == 0 or step == config.steps:
            print(f"{config.stage} step {step}/{config.steps} loss {loss:.4f}", flush=True)

    trainer.run(progress=progress)
    product = "prior.safetensors" if config.stage == "prior" else "encoders.safetensors"
    print(f"wrote {Path(config.out_dir) / product}")
    return 0
