"""Neural mode needs checkpoints the user installs (or trains); find them or say exactly which are missing."""

from __future__ import annotations

from pathlib import Path

from .. import paths
from ..errors import InvertAvatarError
from ..headmodel import FACEVERSE_SIDE_FILES  # the official condition's files, beside the FaceVerse model

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


def require_neural_checkpoints(head_model: str | None = None) -> None:
    """Raise the clear error of :func:`find_neural_checkpoints` when the files are not there, and (given the job's
    ``head_model``) the one of :func:`check_prior_head_model` when the prior is conditioned on another head."""
    prior, _ = find_neural_checkpoints()
    if head_model is not None:
        check_prior_head_model(prior, head_model)


def prior_head_model(metadata: dict[str, str]) -> str:
    """The head model a prior is conditioned on: its ``head_model`` entry, else FaceVerse for a prior converted from
    the official release (it has a ``source`` pickle) and ICT for one trained here (our training renders ICT)."""
    named = metadata.get("head_model")
    if named in ("ict", "faceverse"):
        return named
    return "faceverse" if "source" in metadata else "ict"


def check_prior_head_model(prior: Path, head_model: str) -> None:
    """Refuse, before any work, a prior whose mesh condition belongs to another head model than the job's."""
    from ..neural.checkpoints import read_prior_header

    _, metadata = read_prior_header(prior)
    wanted = prior_head_model(metadata)
    tracking = "faceverse" if str(head_model).lower().startswith("faceverse") else "ict"
    folder = paths.faceverse_dir()
    if wanted == "faceverse" and tracking != "faceverse":
        raise InvertAvatarError(
            "neural_head_model_mismatch",
            f"{prior.name} is the official InvertAvatar prior, conditioned on FaceVerse v3.1, but this job tracks "
            "with the ICT head model.",
            f"Add faceverse_v3_1.npy (and {', '.join(FACEVERSE_SIDE_FILES)}) to {folder} and use --head-model "
            "faceverse, or put a prior trained here on ICT (`invertavatar train prior`) in the checkpoints folder.")
    if wanted == "ict" and tracking == "faceverse":
        raise InvertAvatarError(
            "neural_head_model_mismatch",
            f"{prior.name} was trained on ICT mesh conditions, but this job tracks with FaceVerse.",
            "Use --head-model ict, or add the official prior (ani3dgan512.pkl converted with `invertavatar "
            "convert-checkpoint`) to the checkpoints folder.")
    if wanted == "faceverse":
        missing = [name for name in FACEVERSE_SIDE_FILES if not (folder / name).is_file()]
        if missing:
            raise InvertAvatarError(
                "neural_unavailable", f"The official prior's FaceVerse condition needs {', '.join(missing)} in "
                f"{folder}.", "They come with the official InvertAvatar release (FaceVerse → canonical transform "
                "and face mask); see docs/faceverse.md.")
