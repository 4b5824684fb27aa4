"""Neural mode needs checkpoints the user installs; say exactly which are missing and what fit mode gives."""

from __future__ import annotations

from .. import paths
from ..errors import InvertAvatarError

NEEDED = ("prior (Next3D++ generator)", "inversion encoders (W+ encoder, texture and tri-plane U-Nets, ConvGRU)")


def require_neural_checkpoints() -> None:
    """Raise a clear error unless a neural checkpoint set is installed in the checkpoints folder."""
    folder = paths.checkpoints_dir()
    found = sorted(p.name for p in folder.glob("*") if p.suffix in (".pkl", ".safetensors")) if folder.is_dir() else []
    if not found:
        raise InvertAvatarError(
            "neural_unavailable", f"Neural mode needs the {' and the '.join(NEEDED)} checkpoints; none is in {folder}.",
            "Put the official InvertAvatar .pkl files (or converted .safetensors) there. Without them, mode 'fit' "
            "gives the fitted, textured, rigged avatar.")
    raise InvertAvatarError(
        "neural_unavailable", f"Found {', '.join(found)} in {folder}, but this version cannot run neural inversion "
        "in the reconstruction pipeline yet.", "Use mode 'fit'; see docs/neural.md for the state of the neural core.")
