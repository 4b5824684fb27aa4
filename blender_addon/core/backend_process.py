"""Start and stop a backend on this machine with the command that install.py recorded.

Where the command comes from, first match wins:
1. the environment variable ``INVERTAVATAR_BACKEND_CMD`` (a shell-style command line), or
2. ``backend.json`` (schema in docs/addon.md), looked for in the add-on's user folder, then in
   ``$INVERTAVATAR_HOME``, then in the backend's default data folder (where install.py writes it)::

       {"command": ["/path/.venv/bin/invertavatar", "serve", "--port", "8765"],
        "url": "http://127.0.0.1:8765", "token_file": "/path/token", "cwd": "/path", "env": {"K": "V"}}

The token is ``token`` or the contents of ``token_file``; without either, the backend's default token file
(``<data-dir>/token`` when the command passes ``--data-dir``, else the user config folder) is read.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import errors as E
from .client import BackendClient, Timeouts
from .errors import AddonError

ENV_COMMAND = "INVERTAVATAR_BACKEND_CMD"
CONFIG_NAME = "backend.json"
DEFAULT_URL = "http://127.0.0.1:8765"


@dataclass
class BackendConfig:
    """How to start the local backend and reach it."""

    command: list[str]
    url: str = DEFAULT_URL
    token: str = ""
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""


def _bad_config(path: Path | None, problem: str) -> AddonError:
    return AddonError(E.NO_BACKEND_COMMAND, f"{path} is not a valid backend configuration: {problem}.",
                      "Run install.py again to rewrite it, or fix the file by hand (see docs/addon.md).")


def _platform_dir(kind: str) -> Path:
    """The backend's default ``data`` or ``config`` folder (what platformdirs gives it, app name only)."""
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "invertavatar"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "invertavatar"
    if kind == "config":
        return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "invertavatar"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "invertavatar"


def config_candidates(user_dir: Path | None) -> list[Path]:
    """Where ``backend.json`` may be, in search order."""
    paths = [Path(user_dir) / CONFIG_NAME] if user_dir else []
    if os.environ.get("INVERTAVATAR_HOME"):
        paths.append(Path(os.environ["INVERTAVATAR_HOME"]).expanduser() / CONFIG_NAME)
    paths.append(_platform_dir("data") / CONFIG_NAME)
    return paths


def _read_file_config(user_dir: Path | None) -> tuple[dict, Path | None]:
    for path in config_candidates(user_dir):
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise _bad_config(path, str(exc)) from exc
            if not isinstance(data, dict):
                raise _bad_config(path, "the top level must be an object")
            return data, path
    return {}, None


def _default_token_path(command: list[str]) -> Path:
    if "--data-dir" in command[:-1]:
        return Path(command[command.index("--data-dir") + 1]).expanduser() / "token"
    return _platform_dir("config") / "token"


def _token(file_cfg: dict, command: list[str]) -> str:
    if file_cfg.get("token"):
        return str(file_cfg["token"])
    path = Path(file_cfg["token_file"]).expanduser() if file_cfg.get("token_file") else _default_token_path(command)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""  # the backend creates it on its first start; read again after starting it


def load_config(user_dir: Path | None) -> BackendConfig:
    """Find the start command (env var first, then ``backend.json``); raises ``no_backend_command``."""
    env_cmd = os.environ.get(ENV_COMMAND, "").strip()
    file_cfg, path = _read_file_config(user_dir)
    if env_cmd:
        command, source = shlex.split(env_cmd), f"${ENV_COMMAND}"
    elif "command" in file_cfg:
        command, source = file_cfg["command"], str(path)
        if isinstance(command, str):
            command = shlex.split(command)
        if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise _bad_config(path, "'command' must be a non-empty list of strings")
    else:
        raise AddonError(E.NO_BACKEND_COMMAND, "No command to start the local backend is recorded.",
                         f"Run install.py (it writes {CONFIG_NAME}), set {ENV_COMMAND}, or switch the backend "
                         "mode to Remote and start it yourself.")
    env = file_cfg.get("env") or {}
    if not isinstance(env, dict):
        raise _bad_config(path, "'env' must be an object of strings")
    return BackendConfig(command=list(command), url=str(file_cfg.get("url") or DEFAULT_URL),
                         token=_token(file_cfg, list(command)), cwd=file_cfg.get("cwd"),
                         env={str(k): str(v) for k, v in env.items()}, source=source)


def read_token_file(user_dir: Path | None) -> str:
    """The local backend's token as ``load_config`` finds it ('' when there is none yet)."""
    try:
        return load_config(user_dir).token
    except AddonError:
        file_cfg, _ = _read_file_config(user_dir)
        return str(file_cfg.get("token", ""))


class LocalBackend:
    """A backend process started by the add-on; only ever stops the process it started itself."""

    def __init__(self, config: BackendConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: float = 60.0) -> dict:
        """Start the process (unless a backend already answers at the URL) and wait for ``/v1/health``."""
        client = BackendClient(self.config.url, self.config.token, Timeouts(connect=1.0, read=5.0))
        try:
            return client.health()
        except AddonError as exc:
            if exc.code != E.BACKEND_DOWN:
                raise
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(self.config.command, cwd=self.config.cwd or None, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **self.config.env})
        except OSError as exc:
            raise AddonError(E.NO_BACKEND_COMMAND, f"Cannot start the backend ({' '.join(self.config.command)}): "
                             f"{exc}.", f"Check the command in {self.config.source} or run install.py again.") from exc
        finally:
            log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AddonError(E.BACKEND_DOWN, f"The backend exited with code {self.process.returncode} at start.",
                                 f"Read its log: {self.log_path}")
            try:
                health = client.health()
            except AddonError as exc:
                if exc.code != E.BACKEND_DOWN:
                    raise
                time.sleep(0.25)
                continue
            if not self.config.token:  # a first start creates the token file
                self.config.token = _token({}, self.config.command)
            return health
        self.stop()
        raise AddonError(E.TIMEOUT, f"The backend did not answer within {wait:g} s of starting.",
                         f"Read its log: {self.log_path}")

    def stop(self, grace: float = 5.0) -> None:
        """Terminate the process this object started (no-op otherwise)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace)
        self.process = None
