"""Where the backend keeps its models and user-supplied files.

``INVERTAVATAR_HOME`` (default: the user's data folder) holds ``models/`` (fetched assets), ``faceverse/`` and
``checkpoints/`` (user-licensed files the user puts there). ``INVERTAVATAR_ASSETS`` names an offline folder laid
out like ``shared/assets`` that can stand in for the network at install time and at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home() -> Path:
    """The backend's data folder (created on demand by whoever writes to it)."""
    env = os.environ.get("INVERTAVATAR_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("invertavatar", appauthor=False))


def models_dir() -> Path:
    """Fetched assets (ICT head model, MediaPipe landmarker)."""
    return home() / "models"


def offline_assets_dir() -> Path | None:
    """The offline asset folder named by ``INVERTAVATAR_ASSETS``, if any."""
    env = os.environ.get("INVERTAVATAR_ASSETS")
    return Path(env).expanduser() if env else None


def faceverse_dir() -> Path:
    """Where a user puts FaceVerse ``.npy`` files (downloaded under FaceVerse's own terms)."""
    return Path(os.environ.get("INVERTAVATAR_FACEVERSE_DIR", home() / "faceverse")).expanduser()


def checkpoints_dir() -> Path:
    """Where a user puts the official InvertAvatar checkpoints or our converted ones."""
    return Path(os.environ.get("INVERTAVATAR_CHECKPOINTS", home() / "checkpoints")).expanduser()


def backend_command_file() -> Path:
    """JSON written by install.py: how to start the backend (read by the Blender add-on and ``info``)."""
    return home() / "backend.json"
