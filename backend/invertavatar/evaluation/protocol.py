"""The self-reenactment protocol: avatars from K frames of a clip's first part, scored on its last part.

1. The clip's first ``build_share`` of frames is re-encoded (near-lossless) as its own clip; for every K an avatar is
   built from it by the ordinary pipeline (``run_job`` with ``max_frames=K``: the pipeline's own frame selection).
2. Up to ``max_heldout`` frames spread over the clip's last ``heldout_share`` are detected once.
3. For each avatar, every held-out frame is tracked with identity and texture frozen (pose and expression only),
   rendered with the avatar's texture and compared with the real frame inside the face mask (heldout.py).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InvertAvatarError
from ..io.bundle import read_bundle
from ..io.frames import open_source
from .heldout import RESIDUAL_FLOOR, RESIDUAL_JUMP, detect_heldout, score_frames
from .metrics import load_lpips
from .report import summarise


REFERENCE_FRAMES = 8  # build-part frames whose face colour is the reference for the cut check


@dataclass
class EvalSpec:
    """What to evaluate (the ``invertavatar eval`` options)."""

    clip: Path
    frames: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    mode: str = "fit"
    build_share: float = 0.6  # the avatar may see only this first share of the clip
    heldout_share: float = 0.3  # held-out frames come from this last share
    max_heldout: int = 24
    every: int = 1  # build: consider every Nth frame of the first part (as JobSpec.every)
    texture_size: int = 512
    multiview_identity: bool = True  # as JobSpec.multiview_identity
    detector: str = "mediapipe"
    strip_frames: int = 6


def _validate(spec: EvalSpec) -> None:
    if not spec.frames or min(spec.frames) < 1:
        raise InvertAvatarError("invalid_option", f"Frame counts must be at least 1, got {spec.frames}.",
                                "Use e.g. --frames 1,2,4,8,16.")
    if not (0 < spec.build_share < 1 and 0 < spec.heldout_share < 1
            and spec.build_share + spec.heldout_share <= 1.0):
        raise InvertAvatarError("invalid_option", "The build and held-out shares must be in (0, 1) and not overlap.",
                                "E.g. build 0.6 and held-out 0.3 of the clip.")
    if spec.mode not in ("fit", "neural"):
        raise InvertAvatarError("invalid_option", f"Unknown mode {spec.mode!r}.", "Use 'fit' or 'neural'.")
    if spec.mode == "neural":  # fail before any decoding when the checkpoints are missing
        from ..pipeline.neural_check import require_neural_checkpoints

        require_neural_checkpoints()
    if spec.max_heldout < 1:
        raise InvertAvatarError("invalid_option", "At least one held-out frame is needed.", "Raise --max-heldout.")


def _split_clip(spec: EvalSpec, folder: Path):
    """Write the build part as its own clip; return it, the held-out frames and the build part's colour reference
    frames (lists of (index, image)), and facts about the clip."""
    source = open_source(spec.clip)
    try:
        if source.info.kind != "video":
            raise InvertAvatarError("invalid_input", f"{spec.clip.name} is not a video clip.",
                                    "Evaluate on a clip: the protocol holds out its last frames.")
        count = source.info.frame_count
        if not count:  # containers without a frame count: count by decoding once
            count = sum(1 for _ in source)
            source.close()
            source = open_source(spec.clip)
        split = int(round(spec.build_share * count))
        first_heldout = int(round((1.0 - spec.heldout_share) * count))
        wanted = set(np.unique(np.linspace(first_heldout, count - 1, min(spec.max_heldout, count - first_heldout))
                               .round().astype(int)).tolist()) if count > first_heldout else set()
        if split < 1 or not wanted:
            raise InvertAvatarError("clip_too_short", f"{spec.clip.name} has {count} frames: too few to split.",
                                    "Use a clip of at least a few seconds.")
        references = set(np.linspace(0, split - 1, min(REFERENCE_FRAMES, split)).round().astype(int).tolist())
        build_path = folder / f"{spec.clip.stem}_build.mp4"
        held, reference, size, decoded = [], [], None, 0
        with _Writer(build_path, source.info.fps or 30.0) as writer:
            for frame in source:
                size, decoded = frame.image.shape[:2], frame.index + 1
                if frame.index < split:
                    writer.add(frame.image)
                    if frame.index in references:
                        reference.append((frame.index, frame.image))
                elif frame.index in wanted:
                    held.append((frame.index, frame.image))
        if not held:  # the container promised more frames than it holds
            raise InvertAvatarError("clip_too_short", f"{spec.clip.name} decoded to {decoded} frames, none of them in "
                                    "its held-out part.", "Re-encode the clip (e.g. with ffmpeg) and try again.")
        facts = {"name": spec.clip.name, "frames": decoded, "fps": source.info.fps,
                 "width": int(size[1]) if size else source.info.width,
                 "height": int(size[0]) if size else source.info.height,
                 "build_frames": [0, split], "heldout_frames": [f for f, _ in held]}
        return build_path, held, reference, facts
    finally:
        source.close()


def encode_clip(path: Path, images, fps: float = 30.0) -> Path:
    """Encode RGB uint8 frames (any iterable) as a near-lossless H.264 MP4 (odd sizes are cropped by one pixel)."""
    with _Writer(path, fps) as writer:
        for image in images:
            writer.add(image)
    return path


class _Writer:
    """H.264 at CRF 4 in 4:4:4: the build part keeps the clip's look without a lossless-size file."""

    def __init__(self, path: Path, fps: float) -> None:
        import av
        from fractions import Fraction

        self.container = av.open(str(path), "w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.pix_fmt = "yuv444p"
        self.stream.options = {"crf": "4", "preset": "veryfast"}
        self.started = False

    def add(self, image: np.ndarray) -> None:
        import av

        if not self.started:
            self.stream.height, self.stream.width = image.shape[0] - image.shape[0] % 2, image.shape[1] - image.shape[1] % 2
            self.started = True
        image = np.ascontiguousarray(image[: self.stream.height, : self.stream.width])
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            self.container.mux(packet)

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()


def evaluate_clip(spec: EvalSpec, progress: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Run the protocol; returns the report (report.py schema) and the strip images {K: [(index, real, render)]}."""
    from ..detect import make_detector
    from ..headmodel import load_head_model
    from ..pipeline import JobSpec, run_job

    _validate(spec)
    say = progress or (lambda message: None)
    started = time.perf_counter()
    model = load_head_model("ict")
    lpips, lpips_reason = load_lpips()
    runs, strips = [], {}
    with tempfile.TemporaryDirectory(prefix="invertavatar-eval-") as tmp:
        folder = Path(tmp)
        say("splitting the clip")
        build_clip, held, reference, facts = _split_clip(spec, folder)
        say(f"detecting {len(held)} held-out frames")
        with make_detector(spec.detector) as detector:
                frames, colour_limit = detect_heldout(held, reference, detector)
        faces = [f.index for f in frames if f.detection is not None]  # the strip: frames spread over the part
        strip = {faces[i] for i in np.linspace(0, len(faces) - 1, min(spec.strip_frames, len(faces))).round()
                 .astype(int)} if faces else set()
        for k in sorted(set(spec.frames)):
            say(f"building the avatar from up to {k} frame(s)")
            t0 = time.perf_counter()
            try:
                result = run_job(JobSpec([build_clip], folder / f"k{k}.avatar", mode=spec.mode, every=spec.every,
                                         max_frames=k, detector=spec.detector, texture_size=spec.texture_size,
                                         multiview_identity=spec.multiview_identity))
            except InvertAvatarError as exc:
                if exc.code != "no_face":
                    raise
                runs.append({"k": k, "error": exc.to_dict()})
                continue
            build_seconds = time.perf_counter() - t0
            say(f"scoring {len(frames)} held-out frames against the {k}-frame avatar")
            t0 = time.perf_counter()
            bundle = read_bundle(result.bundle)
            records, kept = score_frames(model, bundle, frames, colour_limit, lpips, keep=strip)
            strips[k] = kept
            runs.append({"k": k, "keyframes_used": result.manifest["frames"]["used"],
                         "build": {"frames_seen": result.manifest["frames"]["seen"],
                                   "frames_skipped": result.manifest["frames"]["skipped"],
                                   "landmark_error_iod_mean": result.manifest["metrics"]["landmark_error_iod_mean"],
                                   "seconds": round(build_seconds, 2)},
                         "score_seconds": round(time.perf_counter() - t0, 2),
                         **summarise(records), "frames": records})
    protocol = {"mode": spec.mode, "frames": sorted(set(spec.frames)), "build_share": spec.build_share,
                "heldout_share": spec.heldout_share, "max_heldout": spec.max_heldout, "every": spec.every,
                "texture_size": spec.texture_size, "detector": spec.detector,
                "checks": {"appearance_change_limit": round(colour_limit, 3), "residual_jump": RESIDUAL_JUMP,
                           "residual_floor": RESIDUAL_FLOOR}}
    from .report import make_report

    report = make_report(facts, protocol, runs, lpips_reason, time.perf_counter() - started)
    return report, strips
