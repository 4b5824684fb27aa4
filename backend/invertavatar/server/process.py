"""Run a backend in a child process on 127.0.0.1 and a free port — for tests, benchmarks and scripts that need
a real server (not an in-process app)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

_BACKEND_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the invertavatar package


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """Start, kill and restart `python -m invertavatar.server` keeping its data in ``data_dir``.

    ``extra`` are more command-line options (e.g. ``"--max-file-mb", "4"``). The child's output is appended to
    ``output`` (next to the data dir), across restarts.
    """

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.extra = list(extra)
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.output = self.data_dir.parent / f"server-{self.port}.out"

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        """Start the child and wait until `/v1/health` answers."""
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_BACKEND_ROOT), env.get("PYTHONPATH", "")]))
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "invertavatar.server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), *self.extra], stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=30).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the server did not come up in {timeout:.0f} s: {self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a crash or a power cut."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), escalating to SIGKILL after 30 s."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""
