"""Fixtures of the neural tests: the official-snapshot mimic helper (loaded by path: tests use importlib mode)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def mimic():
    spec = importlib.util.spec_from_file_location("neural_mimic_official_pickle", _HERE / "mimic_official_pickle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def fake_modules(mimic):
    """The official module paths, registered so mimic snapshots can be pickled (removed afterwards)."""
    added = mimic.install_fake_modules()
    yield
    mimic.remove_fake_modules(added)
