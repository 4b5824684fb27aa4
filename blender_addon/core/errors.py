"""The add-on's one user-facing error type: the backend's (code, message, hint) triple.

The add-on cannot import the backend package, so it mirrors ``invertavatar.errors.InvertAvatarError``.
Codes that only the add-on raises are listed here so tests and the UI agree on them.
"""

from __future__ import annotations

BACKEND_DOWN = "backend_unreachable"
UNAUTHORIZED = "unauthorized"
VERSION_MISMATCH = "api_version_mismatch"
OFFLINE_REFUSED = "online_access_disabled"
BAD_RESPONSE = "bad_response"
BAD_BUNDLE = "bad_bundle"
JOB_FAILED = "job_failed"
CANCELLED = "cancelled"
TIMEOUT = "timeout"
BAD_INPUT = "bad_input"
NO_BACKEND_COMMAND = "no_backend_command"


class AddonError(Exception):
    """A failure the artist can act on: stable ``code``, ``message`` and a ``hint`` saying what to do."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message

    @classmethod
    def from_dict(cls, data: dict, default_code: str = JOB_FAILED) -> "AddonError":
        """Build from the backend's JSON error object ``{"code", "message", "hint"}``."""
        return cls(str(data.get("code") or default_code), str(data.get("message") or "The backend reported an error."),
                   str(data.get("hint") or ""))
