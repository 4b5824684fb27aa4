"""Access control: the bearer token, the bind-address rule and the Host-header check (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
from pathlib import Path

from invertavatar.errors import InvertAvatarError

log = logging.getLogger("invertavatar.server")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """Return ``(token, created)``. A new token is written with mode 0600; a looser existing file is tightened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never overwrite a token another process just wrote; the mode applies from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("token file %s had mode %o; tightening to 0600", path, mode)
            os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise InvertAvatarError("bad_token_file", f"The token file {path} is empty or too short.",
                                    "Delete it and start the server again to create a new token.")
        return token, False
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, True


def token_matches(expected: str, authorization: str | None) -> bool:
    """True when the ``Authorization`` header carries ``Bearer <expected>`` (constant-time compare)."""
    if not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(value.strip().encode("utf-8"), expected.encode("utf-8"))


def is_loopback_host(host: str) -> bool:
    """True for a bind address that only this machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback bind unless the operator asked for it explicitly."""
    if not is_loopback_host(host) and not allow_remote:
        raise InvertAvatarError(
            "remote_bind_refused", f"Refusing to listen on {host}: other machines could reach the backend.",
            "Pass --allow-remote to serve a network (every call still needs the token), or bind 127.0.0.1.")


def host_header_name(host_header: str) -> str:
    """The name part of a ``Host`` header: ``example:8765`` → ``example``, ``[::1]:8765`` → ``::1``."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host_header: str | None, bind_host: str | None = None) -> bool:
    """True when a request names this machine by a loopback name (a rebinding web page names its own domain):
    localhost, 127.0.0.1, ::1, or the loopback address the server is bound to (e.g. 127.0.0.2)."""
    if host_header is None:
        return False
    names = LOOPBACK_NAMES
    if bind_host and is_loopback_host(bind_host):
        names = names | {bind_host.strip("[]").lower()}
    return host_header_name(host_header) in names
