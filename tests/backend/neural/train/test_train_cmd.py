"""The ``train`` command runs a stage from a JSON config and resumes on a second call."""

from __future__ import annotations

import argparse
import json

from invertavatar.cli import train_cmd


def _run(argv):
    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_train_command_runs_and_resumes(tmp_path, capsys):
    config = tmp_path / "coarse.json"
    config.write_text(json.dumps({"size": "tiny", "out_dir": str(tmp_path / "run"), "steps": 2, "batch": 1,
                                  "identities": 1, "frames": 2, "log_every": 1}))
    assert _run(["train", "coarse", "--config", str(config)]) == 0
    assert (tmp_path / "run" / "encoders.safetensors").is_file()
    assert _run(["train", "coarse", "--config", str(config), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "resuming coarse at step 2" in out and "coarse step 3/3" in out
