"""Run parity fixtures by name, sharing the few-shot model between C, D1 and D2 (it takes ~30 s to build)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.inversion.model import InversionNet
from invertavatar.neural.parity.fewshot_runner import build_fewshot, run_c, run_d1, run_d2
from invertavatar.neural.parity.fixture import Fixture, Row
from invertavatar.neural.parity.prior_runner import run_prior_fixture

FIXTURES = ("A", "B", "C", "D1", "D2")
_FEWSHOT = {"C": run_c, "D1": run_d1, "D2": run_d2}


def _quiet(_message: str) -> None:
    return None


class ParityRun:
    """Runs fixtures of one directory; the few-shot wrapper is built once and reused."""

    def __init__(self, directory: str | Path, progress: Callable[[str], None] = _quiet) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise InvertAvatarError("missing_file", f"Parity fixture directory not found: {self.directory}.",
                                    "Pass the directory holding A.json, A.safetensors, ... (reference/parity).")
        self.progress = progress
        self._fewshot: InversionNet | None = None
        self.timings: dict[str, float] = {}

    def fewshot(self, fixture: Fixture) -> InversionNet:
        if self._fewshot is None:
            self._fewshot = build_fewshot(fixture, self.progress)
        return self._fewshot

    def run(self, name: str) -> list[Row]:
        """All comparison rows of fixture ``name`` (A, B, C, D1 or D2)."""
        if name not in FIXTURES:
            raise InvertAvatarError("bad_option", f"Unknown parity fixture '{name}'.", f"Use one of {FIXTURES}.")
        start = time.perf_counter()
        fixture = Fixture(self.directory, name)
        if name in ("A", "B"):
            rows = run_prior_fixture(fixture, self.progress)
        else:
            with torch.no_grad():
                rows = _FEWSHOT[name](fixture, self.fewshot(fixture), self.progress)
        self.timings[name] = time.perf_counter() - start
        return rows

    def close(self) -> None:
        self._fewshot = None
