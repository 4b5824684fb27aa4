"""Settings of the HTTP service: where it keeps its data, what it binds to, and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "invertavatar"
MIB = 1024 * 1024


def default_data_dir() -> Path:
    """The per-user folder for jobs, avatars, the index and logs when ``--data-dir`` is not given."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_token_path(data_dir: Path | None) -> Path:
    """Where the access token lives: inside ``data_dir`` when one was given, else the user config folder."""
    if data_dir is not None:
        return data_dir / "token"
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "token"


@dataclass(frozen=True)
class ServerConfig:
    """Everything the service needs to start. Sizes are bytes, ages are days."""

    data_dir: Path
    token_path: Path
    host: str = "127.0.0.1"
    port: int = 8765
    allow_remote: bool = False
    max_file_bytes: int = 512 * MIB
    max_job_bytes: int = 2048 * MIB
    max_files: int = 256
    #: Largest JSON body (render, animate): a 100000-frame tracks.json is about 40 MiB.
    max_json_bytes: int = 64 * MIB
    queue_size: int = 8
    storage_cap_bytes: int = 20 * 1024 * MIB
    max_age_days: float = 30.0
    cleanup_interval_s: float = 3600.0
    log_max_bytes: int = 2 * MIB
    log_backups: int = 3

    @classmethod
    def create(cls, data_dir: Path | None = None, **overrides: object) -> "ServerConfig":
        """Build a config, filling the data dir and token path with the per-user defaults."""
        token_path = default_token_path(data_dir)
        root = (data_dir or default_data_dir()).expanduser().resolve()
        return cls(data_dir=root, token_path=token_path.expanduser().resolve(), **overrides)  # type: ignore[arg-type]

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def avatars_dir(self) -> Path:
        return self.data_dir / "avatars"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "server.log"
