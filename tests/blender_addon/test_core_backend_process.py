"""Local backend launcher: backend.json / env var, a real subprocess, clear errors (no bpy)."""

import json
import shlex
import socket
import sys
from pathlib import Path

import pytest

from blender_addon.core import errors as E
from blender_addon.core.backend_process import ENV_COMMAND, LocalBackend, load_config, read_token_file
from blender_addon.core.errors import AddonError

STUB = Path(__file__).with_name("stub_backend.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_command_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_COMMAND, raising=False)
    with pytest.raises(AddonError) as err:
        load_config(tmp_path)
    assert err.value.code == E.NO_BACKEND_COMMAND and "install.py" in err.value.hint


def test_backend_json_and_env_override(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_COMMAND, raising=False)
    (tmp_path / "token").write_text("tok123\n")
    (tmp_path / "backend.json").write_text(json.dumps({
        "command": ["/opt/ia/bin/invertavatar", "serve"], "url": "http://127.0.0.1:9000",
        "token_file": str(tmp_path / "token"), "env": {"OMP_NUM_THREADS": "2"}}))
    cfg = load_config(tmp_path)
    assert cfg.command == ["/opt/ia/bin/invertavatar", "serve"] and cfg.url == "http://127.0.0.1:9000"
    assert cfg.token == "tok123" and cfg.env == {"OMP_NUM_THREADS": "2"}
    assert read_token_file(tmp_path) == "tok123"
    monkeypatch.setenv(ENV_COMMAND, "my-backend --port 9000")
    assert load_config(tmp_path).command == ["my-backend", "--port", "9000"]


def test_invalid_backend_json(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_COMMAND, raising=False)
    (tmp_path / "backend.json").write_text(json.dumps({"command": []}))
    with pytest.raises(AddonError, match="non-empty list"):
        load_config(tmp_path)


def test_starts_and_stops_a_real_process(tmp_path, monkeypatch):
    port = _free_port()
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(STUB))} --port {port} --token t"
    monkeypatch.setenv(ENV_COMMAND, command)
    (tmp_path / "backend.json").write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "token": "t"}))
    backend = LocalBackend(load_config(tmp_path), tmp_path / "logs" / "backend.log")
    try:
        health = backend.start(wait=20)
        assert health["api_version"] == "1" and backend.running()
    finally:
        backend.stop()
    assert not backend.running()


def test_process_that_dies_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_COMMAND, f"{shlex.quote(sys.executable)} -c \"raise SystemExit(3)\"")
    (tmp_path / "backend.json").write_text(json.dumps({"url": f"http://127.0.0.1:{_free_port()}"}))
    backend = LocalBackend(load_config(tmp_path), tmp_path / "backend.log")
    with pytest.raises(AddonError) as err:
        backend.start(wait=20)
    assert "code 3" in err.value.message and str(tmp_path / "backend.log") in err.value.hint
