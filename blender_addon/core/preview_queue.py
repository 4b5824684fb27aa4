"""Viewport preview requests off the UI thread: the newest request wins, the draw call never waits.

The render engine's ``view_draw`` calls :meth:`PreviewQueue.request` with everything that defines the picture (a
hashable key) and draws whatever :meth:`PreviewQueue.latest` holds. One worker thread sends one request at a time;
a request made while another is in flight replaces any request still waiting (stale requests are dropped, never
sent), and a result is only offered when no newer one was shown before it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from .errors import AddonError

IDLE_SECONDS = 30.0  # a worker thread with nothing to do for this long ends (engines are not told they are gone)


@dataclass
class PreviewResult:
    key: Hashable
    png: bytes
    renderer: str
    seconds: float
    serial: int


class PreviewQueue:
    """``render(payload) -> (png, renderer)`` runs in a daemon thread; ``on_result`` is called from it (e.g. to ask
    for a redraw)."""

    def __init__(self, render: Callable[[Any], tuple[bytes, str]],
                 on_result: Callable[[], None] | None = None) -> None:
        self._render = render
        self._on_result = on_result or (lambda: None)
        self._cond = threading.Condition()
        self._pending: tuple[int, Hashable, Any] | None = None
        self._serial = 0
        self._requested_key: Hashable = None
        self._result: PreviewResult | None = None
        self._taken = 0
        self.error: AddonError | None = None
        self.busy = False
        self.sent = 0
        self.dropped = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self, key: Hashable, payload: Any) -> bool:
        """Ask for the picture ``key`` (no-op when it is the last one asked for); True when a request was queued."""
        with self._cond:
            if key == self._requested_key:
                return False
            if self._pending is not None:
                self.dropped += 1
            self._serial += 1
            self._pending = (self._serial, key, payload)
            self._requested_key = key
            if self._thread is None:  # started on demand; it ends itself after a quiet spell
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name="invertavatar-preview", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    def latest(self) -> PreviewResult | None:
        """The newest finished picture (may be older than the last request)."""
        with self._cond:
            return self._result

    def has_new(self) -> bool:
        """Whether a picture arrived that :meth:`take_new` has not handed out yet."""
        with self._cond:
            return self._result is not None and self._result.serial != self._taken

    def take_new(self) -> PreviewResult | None:
        """The newest picture if it was not taken before (so the caller uploads each picture once)."""
        with self._cond:
            if self._result is None or self._result.serial == self._taken:
                return None
            self._taken = self._result.serial
            return self._result

    @property
    def last_seconds(self) -> float | None:
        result = self.latest()
        return result.seconds if result else None

    def stop(self, timeout: float = 1.0) -> None:
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or in flight (tests and background renders only)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending is not None or self.busy) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            return self._pending is None and not self.busy

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._pending is None and not self._stopping:
                    self._cond.wait(IDLE_SECONDS)
                if self._stopping or self._pending is None:
                    self._thread = None  # stopped, or quiet for a while: the next request starts a new thread
                    return
                serial, key, payload = self._pending
                self._pending = None
                self.busy = True
            started = time.monotonic()
            try:
                png, renderer = self._render(payload)
                error = None
            except AddonError as exc:
                png, renderer, error = b"", "", exc
            except Exception as exc:  # a broken connection must not kill the thread
                png, renderer, error = b"", "", AddonError("backend_down", f"The preview render failed ({exc}).",
                                                           "Check the backend connection.")
            with self._cond:
                self.busy = False
                self.sent += 1
                self.error = error
                if error is None and (self._result is None or serial > self._result.serial):
                    self._result = PreviewResult(key, png, renderer, time.monotonic() - started, serial)
                self._cond.notify_all()
            self._on_result()
