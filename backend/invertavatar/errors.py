"""The one exception type that reaches users: a stable code, a message, and a hint saying what to do."""

from __future__ import annotations


class InvertAvatarError(Exception):
    """A failure the user can act on.

    ``code`` is a stable machine-readable string (the server returns it, the add-on matches on it),
    ``message`` says what went wrong, ``hint`` says what to do about it.
    """

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class CancelledError(InvertAvatarError):
    """A job was cancelled by its owner; nothing was written."""

    def __init__(self, message: str = "The job was cancelled.") -> None:
        super().__init__("cancelled", message, "Start the job again when you are ready.")
