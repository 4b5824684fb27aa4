"""What `GET /v1/health` reports: versions, the compute device, and which models and optional files are present."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from invertavatar import API_VERSION, __version__, assets, paths
from invertavatar.errors import InvertAvatarError

_CACHE_S = 10.0  # the answer changes only when someone installs a file; polling clients need not rescan
_lock = threading.Lock()
_cached: tuple[float, dict[str, Any]] | None = None


def _device_name() -> str:
    # torch is imported on the first health call only, so `serve` comes up fast.
    from invertavatar.device import describe_device, select_device

    return describe_device(select_device())


def _folder_info(folder: Path, suffixes: tuple[str, ...], hint: str) -> dict[str, Any]:
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in suffixes) if folder.is_dir() else []
    if files:
        return {"installed": True, "path": str(folder)}
    return {"installed": False, "hint": hint}


def models_status() -> dict[str, dict[str, Any]]:
    """Installed state of each asset (by presence; `install.py` verifies checksums) and of the user's files."""
    status: dict[str, dict[str, Any]] = {}
    for asset in assets.ASSETS:
        try:
            status[asset.name] = {"installed": True, "path": str(assets.find_asset(asset))}
        except InvertAvatarError as exc:
            status[asset.name] = {"installed": False, "hint": exc.hint}
    status["faceverse"] = _folder_info(
        paths.faceverse_dir(), (".npy",),
        f"Download FaceVerse under its own terms and put its .npy files in {paths.faceverse_dir()}.")
    status["neural-checkpoint"] = _folder_info(
        paths.checkpoints_dir(), (".pkl", ".safetensors", ".pt", ".pth"),
        f"Put an InvertAvatar checkpoint (official .pkl or converted .safetensors) in {paths.checkpoints_dir()}.")
    return status


def health() -> dict[str, Any]:
    """The body of `GET /v1/health`, cached for a few seconds."""
    global _cached
    with _lock:
        if _cached is None or time.monotonic() - _cached[0] > _CACHE_S:
            body = {"status": "ok", "backend_version": __version__, "api_version": API_VERSION,
                    "device": _device_name(), "models": models_status()}
            _cached = (time.monotonic(), body)
        return _cached[1]
