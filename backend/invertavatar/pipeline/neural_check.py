"""Neural mode needs checkpoints the user installs (or trains); find them or say exactly which are missing."""

from __future__ import annotations

from pathlib import Path

from .. import paths
from ..errors import InvertAvatarError

ENCODERS_FILE = "encoders.safetensors"
PRIOR_HINT = ("a prior: the official ani3dgan512.pkl converted with `invertavatar convert-checkpoint`, or one "
              "trained with `invertavatar train prior`")
ENCODERS_HINT = f"{ENCODERS_FILE}: the inversion encoders, trained with `invertavatar train coarse/fine/recurrent`"


def find_neural_checkpoints() -> tuple[Path, Path]:
    """(prior, encoders) safetensors in the checkpoints folder, or a clear error naming what is missing."""
    from ..neural.checkpoints import read_prior_header

    folder = paths.checkpoints_dir()
    encoders = folder / ENCODERS_FILE
    priors = []
    for candidate in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        if candidate.name == ENCODERS_FILE:
            continue
        try:
            read_prior_header(candidate)
        except InvertAvatarError:
            continue
        priors.append(candidate)
    missing = ([PRIOR_HINT] if not priors else []) + ([ENCODERS_HINT] if not encoders.is_file() else [])
    if missing:
        raise InvertAvatarError(
            "neural_unavailable", f"Neural mode needs, in {folder}: {'; '.join(missing)}.",
            "Install or train them (docs/neural.md, docs/neural-inversion.md). Without them, mode 'fit' gives the "
            "fitted, textured, rigged avatar.")
    return priors[0], encoders


def require_neural_checkpoints() -> None:
    """Raise the clear error of :func:`find_neural_checkpoints` when the files are not there."""
    find_neural_checkpoints()
