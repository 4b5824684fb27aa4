"""What is installed: one report shared by ``invertavatar info`` and the server's health endpoint."""

from __future__ import annotations

from . import API_VERSION, __version__, assets, paths
from .device import describe_device, select_device

FAN_FILES = ("2DFAN4-11f355bf06.pth.tar",)


def _fan_dir():
    import torch

    from pathlib import Path

    return Path(torch.hub.get_dir()) / "checkpoints"


def installation_report() -> dict:
    """Backend and API versions, device, torch build, and each model file: installed (with path) or a hint."""
    import torch

    models: dict[str, dict] = {}
    for asset in assets.ASSETS:
        try:
            path = assets.find_asset(asset)
            models[asset.name] = {"installed": True, "path": str(path)}
        except Exception as exc:  # InvertAvatarError carries the hint
            models[asset.name] = {"installed": False, "hint": getattr(exc, "hint", str(exc))}
    faceverse = sorted(paths.faceverse_dir().glob("*.npy")) if paths.faceverse_dir().is_dir() else []
    models["faceverse"] = ({"installed": True, "path": str(faceverse[0])} if faceverse else
                           {"installed": False, "hint": f"optional: put FaceVerse .npy files in {paths.faceverse_dir()}"})
    checkpoints = (sorted(p for p in paths.checkpoints_dir().iterdir() if p.suffix in (".pkl", ".safetensors"))
                   if paths.checkpoints_dir().is_dir() else [])
    models["invertavatar-checkpoints"] = (
        {"installed": True, "path": ", ".join(str(p) for p in checkpoints)} if checkpoints else
        {"installed": False, "hint": f"optional (neural mode): put the official .pkl or converted checkpoints in "
                                     f"{paths.checkpoints_dir()}"})
    fan = [(_fan_dir() / name) for name in FAN_FILES]
    models["face-alignment-fan"] = (
        {"installed": True, "path": str(fan[0])} if all(p.is_file() for p in fan) else
        {"installed": False, "hint": f"optional: put {', '.join(FAN_FILES)} in {_fan_dir()}"})
    device = select_device()
    return {
        "backend_version": __version__, "api_version": API_VERSION, "device": describe_device(device),
        "device_type": device.type, "torch": f"{torch.__version__} (CUDA {torch.version.cuda or 'none'})",
        "home": str(paths.home()), "models": models,
    }
