"""Start and stop a backend on this machine with the command that install.py recorded.

Where the command comes from, first match wins:
1. the environment variable ``INVERTAVATAR_BACKEND_CMD`` (a shell-style command line), or
2. ``backend.json`` in the add-on's user folder (schema in docs/addon.md)::

       {"command": ["/path/.venv/bin/invertavatar", "serve", "--port", "8765"],
        "url": "http://127.0.0.1:8765", "token_file": "/path/token", "cwd": "/path", "env": {"K": "V"}}
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
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


def _bad_config(path: Path, problem: str) -> AddonError:
    return AddonError(E.NO_BACKEND_COMMAND, f"{path} is not a valid backend configuration: {problem}.",
                      "Run install.py again to rewrite it, or fix the file by hand (see docs/addon.md).")


def load_config(user_dir: Path | None) -> BackendConfig:
    """Find the start command (env var first, then ``backend.json``); raises ``no_backend_command``."""
    env_cmd = os.environ.get(ENV_COMMAND, "").strip()
    file_cfg: dict = {}
    path = Path(user_dir) / CONFIG_NAME if user_dir else None
    if path is not None and path.is_file():
        try:
            file_cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _bad_config(path, str(exc)) from exc
        if not isinstance(file_cfg, dict):
            raise _bad_config(path, "the top level must be an object")
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
                         f"Run install.py (it writes {CONFIG_NAME} into the add-on's user folder), set "
                         f"{ENV_COMMAND}, or switch the backend mode to Remote and start it yourself.")
    token = str(file_cfg.get("token", ""))
    token_file = file_cfg.get("token_file")
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError:
            token = ""  # the backend may create it on first start; read again after start
    env = file_cfg.get("env") or {}
    if not isinstance(env, dict):
        raise _bad_config(path, "'env' must be an object of strings")
    return BackendConfig(command=list(command), url=str(file_cfg.get("url") or DEFAULT_URL), token=token,
                         cwd=file_cfg.get("cwd"), env={str(k): str(v) for k, v in env.items()}, source=source)


def read_token_file(user_dir: Path | None) -> str:
    """The token named by ``backend.json``'s ``token_file`` (or its ``token``), '' when there is none."""
    try:
        cfg = json.loads((Path(user_dir) / CONFIG_NAME).read_text(encoding="utf-8")) if user_dir else {}
    except (OSError, ValueError):
        return ""
    if not isinstance(cfg, dict):
        return ""
    if cfg.get("token"):
        return str(cfg["token"])
    try:
        return Path(cfg["token_file"]).read_text(encoding="utf-8").strip() if cfg.get("token_file") else ""
    except OSError:
        return ""


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
                return client.health()
            except AddonError as exc:
                if exc.code != E.BACKEND_DOWN:
                    raise
            time.sleep(0.25)
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
