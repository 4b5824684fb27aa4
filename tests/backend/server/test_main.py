import argparse
import os
import subprocess
import sys
from pathlib import Path

from invertavatar.cli import serve_cmd
from invertavatar.server.config import MIB
from invertavatar.server.main import config_from_args, run

BACKEND = Path(__file__).resolve().parents[3] / "backend"


def test_serve_subcommand_parses_and_builds_the_config(tmp_path):
    parser = argparse.ArgumentParser()
    serve_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--port", "9001", "--data-dir", str(tmp_path), "--max-file-mb", "1.5"])
    assert args.func is run
    config = config_from_args(args)
    assert (config.host, config.port, config.allow_remote) == ("127.0.0.1", 9001, False)
    assert config.data_dir == tmp_path.resolve() and config.token_path == tmp_path.resolve() / "token"
    assert config.max_file_bytes == int(1.5 * MIB)


def test_non_loopback_bind_is_refused_without_the_flag(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(BACKEND))
    result = subprocess.run([sys.executable, "-m", "invertavatar.server", "--host", "0.0.0.0", "--port", "0",
                             "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2
    assert "--allow-remote" in result.stderr
    assert not (tmp_path / "data" / "token").exists()  # refused before anything was created
