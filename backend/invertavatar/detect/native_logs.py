"""Quiet MediaPipe/TFLite start-up chatter on stderr without hiding anything else written there.

MediaPipe's native code (absl logging, the TFLite/LiteRT runtime) prints INFO and W0000 lines straight to file
descriptor 2 when a graph is created, on its first inference and when it is closed — on every CLI run, in the server
log and during ``eval``. Its Python API has no switch for the native side, so `quiet_native_stderr` points fd 2 at a
temporary file for the duration of those calls and afterwards writes back every line that is not such chatter:
errors (E/F lines, Python tracebacks, our own log records from other threads) still reach stderr, only later.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

# Lines the native runtime prints on a normal start-up, inference and shutdown. An "E"/"F" glog line or any line
# not matching is kept.
_CHATTER = re.compile(
    r"^(?:"
    r"[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]"  # glog/absl INFO and WARNING lines: I0000 / W0000 ...
    r"|INFO: "  # TFLite / LiteRT INFO lines
    r"|WARNING: Logging before InitGoogle\(\) is written to STDERR"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r")"
)
_LOCK = threading.RLock()  # fd 2 is process-wide: one redirection at a time (re-entrant: a finaliser may nest)
_ENV_OFF = "INVERTAVATAR_NATIVE_LOGS"  # set to 1 to see the native lines (debugging MediaPipe itself)


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # a replaced or closed sys.stderr
        pass


def is_chatter(line: str) -> bool:
    """Whether ``line`` is routine native INFO/WARNING output that `quiet_native_stderr` drops."""
    return bool(_CHATTER.match(line))


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Run the body with fd 2 captured; afterwards re-emit every captured line that `is_chatter` does not match.

    Works on file descriptor 2 itself (where native code writes, whatever ``sys.stderr`` is). A no-op when
    ``INVERTAVATAR_NATIVE_LOGS=1`` or when the process has no fd 2.
    """
    fd = 2
    try:
        os.fstat(fd)
    except OSError:
        yield
        return
    if os.environ.get(_ENV_OFF) == "1":
        yield
        return
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as capture:
        _flush_stderr()
        saved = os.dup(fd)
        os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            try:
                _flush_stderr()
            finally:
                os.dup2(saved, fd)
                os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not is_chatter(line)]
            if kept:
                os.write(fd, "".join(kept).encode("utf-8", "replace"))


def create_task(task_class, options, what: str):
    """``task_class.create_from_options(options)`` with MediaPipe's native start-up lines dropped; a model file it
    cannot load (``what`` names it, e.g. "… is not a segmentation model") is a clear ``damaged_asset`` error."""
    from invertavatar.errors import InvertAvatarError

    try:
        with quiet_native_stderr():
            return task_class.create_from_options(options)
    except (RuntimeError, ValueError) as exc:
        raise InvertAvatarError("damaged_asset", f"{what} ({exc}).",
                                "Reinstall it with `invertavatar assets fetch`; it checks the SHA-256.") from exc
