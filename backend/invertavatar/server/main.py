"""Start the service: logging, the token, the bind rule, then uvicorn."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path

from invertavatar.errors import InvertAvatarError

from .auth import check_bind, load_or_create_token
from .config import MIB, ServerConfig

log = logging.getLogger("invertavatar.server")


def setup_logging(config: ServerConfig) -> None:
    """Rotating log file in the data dir (tracebacks go there, never to clients), and a short console log."""
    config.log_path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(config.log_path, maxBytes=config.log_max_bytes,
                                                        backupCount=config.log_backups, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    for name in ("invertavatar", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [file_handler] + ([] if name == "uvicorn.access" else [console])
        logger.setLevel(logging.INFO)
        logger.propagate = False


def check_writable(config: ServerConfig) -> None:
    """Create the data folders and prove each can be written, so that a read-only or missing place fails the start
    with a clear message instead of a traceback now or a failed job later."""
    import tempfile

    folders = [config.data_dir, config.jobs_dir, config.avatars_dir, config.log_path.parent,
               config.token_path.parent]
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise InvertAvatarError(
                "data_dir_not_writable", f"The backend cannot write to {folder} ({reason}).",
                "Pass --data-dir with a folder you can write to, or fix the folder's permissions "
                "(and free some space if the disk is full).") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `invertavatar serve` (shared by `python -m invertavatar.server`)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder for jobs, avatars, the index, logs and the token (default: per-user folders)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host (every call still needs the token)")
    parser.add_argument("--max-file-mb", type=float, default=512, help="largest single upload (MiB, default 512)")
    parser.add_argument("--max-job-mb", type=float, default=2048, help="largest upload per job (MiB, default 2048)")
    parser.add_argument("--queue-size", type=int, default=8, help="jobs that may wait for the worker (default 8)")
    parser.add_argument("--storage-cap-gb", type=float, default=20,
                        help="avatars beyond this total are removed, least recently used first (GiB, default 20)")
    parser.add_argument("--max-age-days", type=float, default=30,
                        help="avatars unused for this long are removed (default 30)")


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if args.port < 0 or args.port > 65535 or args.queue_size < 1 or args.max_file_mb <= 0 or args.max_job_mb <= 0:
        raise InvertAvatarError("bad_argument", "Port, queue size and upload limits must be positive.",
                                "See `invertavatar serve --help`.")
    return ServerConfig.create(
        args.data_dir, host=args.host, port=args.port, allow_remote=args.allow_remote,
        max_file_bytes=int(args.max_file_mb * MIB), max_job_bytes=int(args.max_job_mb * MIB),
        queue_size=args.queue_size, storage_cap_bytes=int(args.storage_cap_gb * 1024 * MIB),
        max_age_days=args.max_age_days)


def serve(config: ServerConfig) -> None:
    """Run the server until interrupted."""
    import uvicorn

    from .app import create_app

    check_bind(config.host, config.allow_remote)
    check_writable(config)
    setup_logging(config)
    token, created = load_or_create_token(config.token_path)
    if created:
        # Printed exactly once, on the start that created it; later starts say where it is kept.
        print(f"InvertAvatar backend access token (shown once, stored in {config.token_path}):\n  {token}",
              flush=True)
    else:
        print(f"InvertAvatar backend: access token in {config.token_path}", flush=True)
    log.info("serving on http://%s:%d, data in %s", config.host, config.port, config.data_dir)
    app = create_app(config, token)
    uvicorn.run(app, host=config.host, port=config.port, log_config=None, access_log=True,
                timeout_graceful_shutdown=5)


def run(args: argparse.Namespace) -> int:
    """Entry point for the CLI: returns the exit status."""
    try:
        serve(config_from_args(args))
    except InvertAvatarError as exc:
        print(f"error: {exc.message}\n  {exc.hint}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invertavatar.server", description="InvertAvatar HTTP backend")
    add_arguments(parser)
    return run(parser.parse_args(argv))
