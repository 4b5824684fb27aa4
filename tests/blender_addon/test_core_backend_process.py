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


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No real backend.json or token of this machine may leak into these tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("INVERTAVATAR_HOME", raising=False)
    monkeypatch.delenv(ENV_COMMAND, raising=False)
    return home


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


def test_finds_install_py_record_and_default_token(tmp_path, isolated_home, monkeypatch):
    """install.py writes backend.json into the backend's data folder; the server keeps its token in the config one."""
    (isolated_home / "data" / "invertavatar").mkdir(parents=True)
    (isolated_home / "data" / "invertavatar" / "backend.json").write_text(json.dumps({
        "command": ["/venv/bin/invertavatar", "serve", "--host", "127.0.0.1", "--port", "8765"],
        "url": "http://127.0.0.1:8765", "written_by": "install.py"}))
    (isolated_home / "config" / "invertavatar").mkdir(parents=True)
    (isolated_home / "config" / "invertavatar" / "token").write_text("from-config\n")
    cfg = load_config(tmp_path / "addon-user-dir")
    assert cfg.command[0] == "/venv/bin/invertavatar" and cfg.token == "from-config"
    home = tmp_path / "ia-home"
    home.mkdir()
    (home / "backend.json").write_text(json.dumps({"command": ["x", "serve", "--data-dir", str(home)]}))
    (home / "token").write_text("from-data-dir")
    monkeypatch.setenv("INVERTAVATAR_HOME", str(home))
    cfg = load_config(None)
    assert cfg.command[0] == "x" and cfg.token == "from-data-dir" and read_token_file(None) == "from-data-dir"
