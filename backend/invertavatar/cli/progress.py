"""The commands' progress bar and Ctrl-C handling: a ``progress(stage, fraction, message)`` callback that draws a
bar, and a cancel event set by Ctrl-C so that the work stops cleanly (and writes nothing) instead of dying."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

Progress = Callable[[str, float, str], None]


@contextmanager
def progress_and_cancel() -> Iterator[tuple[Progress, threading.Event]]:
    """``with progress_and_cancel() as (progress, cancel): run(..., progress, cancel)``."""
    from tqdm import tqdm

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())  # Ctrl-C cancels cleanly
    bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}")

    def progress(stage: str, fraction: float, message: str) -> None:
        bar.n = round(fraction * 100, 1)
        bar.set_description(stage)
        bar.set_postfix_str(message, refresh=False)
        bar.refresh()

    try:
        yield progress, cancel
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
