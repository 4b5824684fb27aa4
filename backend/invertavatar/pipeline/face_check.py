"""The human-face check applied to a job: photos that are not a human face fail the job, clip frames are skipped.

`FaceGate.admit` runs `invertavatar.detect.human_check` on every detected face before it is tracked. A photo that
is not a human face fails the job with ``not_a_human_face`` naming the file; a clip frame is skipped and counted,
and a clip without any human frame fails the same way. An artwork is accepted and reported in the job's warnings.
``accept_any_face`` turns a refusal into a warning; the bundle's manifest states it (``face_check``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..detect import Detection
from ..detect.human_check import ARTWORK, NOT_HUMAN, HumanFaceCheck
from ..errors import InvertAvatarError

ARTWORK_WARNING = "this looks like an artwork: the texture is the artwork's colours"
_WHAT_WORKS = ("Use a photo or clip of a person's face: one human face clearly visible, roughly frontal (turned "
               "at most about 45°), well lit, at least about 100 pixels wide. Animals are not supported. If this "
               "is a human face, or you want an avatar from it anyway, run again with --accept-any-face (API "
               "option accept_any_face).")


class FaceGate:
    """Per-job state of the human-face check: what was refused, skipped, flagged or let through."""

    def __init__(self, accept_any_face: bool = False) -> None:
        self.accept_any_face = accept_any_face
        self.check = HumanFaceCheck()
        self.checked = 0
        self.not_human: list[str] = []  # sources refused (clip frames: skipped), or let through when accepting any
        self.artwork: list[str] = []
        self.clip_frames_human = 0

    def admit(self, image: np.ndarray, detection: Detection, is_clip: bool) -> bool:
        """Whether to track this face. Raises ``not_a_human_face`` for a photo that is not a human face."""
        verdict = self.check.check(image, detection)
        self.checked += 1
        source = detection.source or "the image"
        if verdict.kind == NOT_HUMAN:
            self.not_human.append(source)
            if self.accept_any_face:
                return True
            if is_clip:
                return False
            raise InvertAvatarError("not_a_human_face",
                                    f"{source} does not show a human face: {verdict.reason}.", _WHAT_WORKS)
        if is_clip:
            self.clip_frames_human += 1
        if verdict.kind == ARTWORK:
            self.artwork.append(source)
        return True

    def refusal(self, files: list[Path]) -> InvertAvatarError | None:
        """The error for a job whose every face was refused (a clip with no human frame), or None."""
        if not self.not_human or self.accept_any_face:
            return None
        names = ", ".join(f.name for f in files)
        return InvertAvatarError(
            "not_a_human_face",
            f"None of the {len(self.not_human)} face(s) found in {names} is a human face; every such frame was "
            "skipped.", _WHAT_WORKS)

    def warnings(self, clip: bool) -> list[str]:
        """Messages for the job's warnings: the artwork warning, and faces let through by ``accept_any_face``."""
        out = []
        # A clip is an artwork when most of its human frames look like one; one flagged photo is enough.
        if self.artwork and (not clip or len(self.artwork) * 2 > self.clip_frames_human):
            where = f"{len(self.artwork)} of {self.clip_frames_human} frames" if clip else ", ".join(self.artwork)
            out.append(f"{where}: {ARTWORK_WARNING}.")
        if self.not_human and self.accept_any_face:
            where = f"{len(self.not_human)} frame(s)" if clip else ", ".join(self.not_human)
            out.append(f"{where}: accepted although it does not look like a human face (--accept-any-face).")
        return out

    def manifest(self, clip: bool) -> dict:
        """The bundle's ``face_check`` entry."""
        return {"accept_any_face": self.accept_any_face, "checked": self.checked,
                "not_human": len(self.not_human), "not_human_sources": self.not_human[:20],
                "artwork": len(self.artwork), "artwork_sources": self.artwork[:20],
                "looks_like_artwork": any(ARTWORK_WARNING in w for w in self.warnings(clip))}
