"""Parametric head models behind one interface (:class:`HeadModel`): ICT (default) and FaceVerse."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import InvertAvatarError
from .arkit import ARKIT_NAMES, ArkitMap
from .base import BONE_NAMES, HeadModel

__all__ = ["ARKIT_NAMES", "ArkitMap", "BONE_NAMES", "HeadModel", "load_head_model"]


FACEVERSE_SIDE_FILES = ("fv2fl_30.npy", "v31_face_mask_new.npy")
# What a user puts in the FaceVerse folder (none is downloaded or shipped): name, need, where it comes from.
FACEVERSE_USER_FILES = (
    ("faceverse_v3_1.npy", "--head-model faceverse", "FaceVerse v3.1 model: the official InvertAvatar README's "
     "download (data_preprocess/FaceVerse/v3/), under FaceVerse's terms"),
    ("fv2fl_30.npy", "official prior", "FaceVerse -> canonical transform: official repository, data_preprocess"),
    ("v31_face_mask_new.npy", "official prior", "per-vertex face mask: official repository, data_preprocess"),
    ("dense_uv_expanded_mask_onlyFace.png", "official encoders' UV inputs (not read by this version)",
     "UV-space face mask: official repository, data_preprocess"),
)


@lru_cache(maxsize=4)
def load_head_model(name: str = "ict", path: str | None = None) -> HeadModel:
    """Load a head model by name: ``"ict"`` (installed asset) or ``"faceverse"`` (the user's ``.npy``).

    ``path`` overrides where the file is read from. Results are cached: models are immutable once loaded.
    """
    from .. import assets, paths

    if name == "ict":
        from .ict import load_ict

        return load_ict(Path(path) if path else assets.find_asset(assets.ICT))
    if name == "faceverse":
        from .faceverse import load_faceverse

        if path is None:
            # The official side files (fv2fl_30.npy, v31_face_mask_new.npy) live in the same folder: not models.
            found = [f for f in sorted(paths.faceverse_dir().glob("*.npy")) if f.name not in FACEVERSE_SIDE_FILES]
            if not found:
                raise InvertAvatarError(
                    "faceverse_missing", f"No FaceVerse model in {paths.faceverse_dir()}.",
                    "Download FaceVerse (v3: faceverse_v3_1.npy) under its terms and put it there; see "
                    "docs/faceverse.md. The default ICT model works without it.")
            path = str(found[0])
        from .faceverse_arkit import with_arkit_transfer

        # Without exBase_52 the ARKit keys come through ICT's shapes (computed once per file, then cached).
        return with_arkit_transfer(load_faceverse(Path(path)), load_head_model("ict"))
    raise InvertAvatarError("unknown_head_model", f"Unknown head model {name!r}.", "Use 'ict' or 'faceverse'.")
