"""Reenactment: drive an avatar with another performance (a clip, or its tracks.json) and encode a video.

The driving clip is tracked by the ordinary pipeline (fit mode): the driving person's own identity is fitted only so
that their expressions, head pose and gaze can be read; the avatar keeps its own identity and appearance. Every
tracked frame is rendered through :func:`invertavatar.renderers.render` and encoded as it comes (streamed).
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import CancelledError, InvertAvatarError
from ..render.framing import portrait_camera
from . import choose_renderer, render
from .video import VideoWriter

Progress = Callable[[str, float, str], None]
TRACK_SHARE = 0.4  # progress reached when the driving clip is tracked


@dataclass
class AnimateResult:
    output: Path
    frames: int
    renderer: str
    fps: float


def read_tracks_file(path: Path) -> dict | None:
    """The tracks of a tracks.json file, or None when ``path`` is not one (a clip, say)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise InvertAvatarError("invalid_input", f"{Path(path).name} is JSON but not a tracks.json.",
                                "Pass a driving clip, or the tracks.json of an avatar bundle.")
    check_tracks(data, Path(path).name)
    return data


def check_tracks(tracks: dict, name: str = "tracks") -> None:
    """Every frame needs an ``index`` and as many ARKit weights as ``arkit_names`` (52 when not given)."""
    count = len(tracks.get("arkit_names") or ()) or 52
    frames = tracks.get("frames") or []
    bad = next((i for i, f in enumerate(frames) if not isinstance(f, dict) or "index" not in f
                or not isinstance(f.get("arkit"), list) or len(f["arkit"]) != count), None)
    if not frames or bad is not None:
        where = "has no frames" if not frames else f"frame {bad} lacks `index` or {count} `arkit` weights"
        raise InvertAvatarError("invalid_input", f"{name} {where}.",
                                "Use the tracks.json of an avatar bundle (docs/bundle-format.md).")


def track_driving_clip(clip: Path, work: Path, progress: Progress, cancel: threading.Event) -> dict:
    """Track ``clip`` with the pipeline (fit mode, small texture: only the tracks are kept)."""
    from ..io.bundle import read_bundle
    from ..pipeline import JobSpec, run_job

    def scaled(stage: str, fraction: float, message: str) -> None:
        progress(stage, TRACK_SHARE * fraction, f"driving clip: {message}")

    spec = JobSpec([clip], work / "drive.avatar", mode="fit", max_frames=4, texture_size=128, overwrite=True)
    result = run_job(spec, scaled, cancel)
    tracks = read_bundle(result.bundle).tracks
    if not tracks or not tracks.get("frames"):
        raise InvertAvatarError("no_face", f"No face was tracked in {clip.name}.",
                                "Drive with a clip in which one face is clearly visible.")
    return tracks


def _driving_frames(clip: Path, indices: list[int]) -> Iterator[np.ndarray]:
    """The clip's frames at ``indices`` (increasing), decoded once, streamed."""
    from ..io.frames import open_source

    source = open_source(clip)
    try:
        wanted = iter(indices)
        target = next(wanted, None)
        for frame in source:
            while target is not None and frame.index == target:
                yield frame.image
                target = next(wanted, None)
            if target is None:
                return
    finally:
        source.close()


def _side_by_side(driving: np.ndarray, avatar: np.ndarray) -> np.ndarray:
    """Driving frame scaled to the avatar's height | avatar."""
    import cv2

    height = avatar.shape[0]
    width = max(2, round(driving.shape[1] * height / driving.shape[0]))
    return np.concatenate([cv2.resize(driving, (width, height), interpolation=cv2.INTER_AREA), avatar], axis=1)


def animate(avatar: Path, drive: Path, output: Path, renderer: str | None = None, size: int = 512,
            side_by_side: bool = False, fps: float | None = None, neural_resolution: int | None = None,
            progress: Progress | None = None, cancel: threading.Event | None = None) -> AnimateResult:
    """Render ``avatar`` (a bundle folder) driven by ``drive`` (a clip or a tracks.json) into the video ``output``.

    One video frame per tracked driving frame. A set ``cancel`` stops within a frame and leaves no video.
    """
    from ..io.bundle import read_bundle

    report = progress or (lambda stage, fraction, message: None)
    cancel = cancel or threading.Event()
    bundle = read_bundle(avatar)
    name = choose_renderer(bundle, renderer)  # refuse before any tracking work
    if not 16 <= size <= 2048:
        raise InvertAvatarError("invalid_option", f"--size must be 16..2048, got {size}.", "Use e.g. 512.")
    drive = Path(drive)
    if not drive.is_file():
        raise InvertAvatarError("unreadable_input", f"{drive} does not exist.", "Pass a driving clip or tracks.json.")
    tracks = read_tracks_file(drive)
    with tempfile.TemporaryDirectory(prefix="invertavatar-drive-") as tmp:
        if tracks is None:
            tracks = track_driving_clip(drive, Path(tmp), report, cancel)
        elif side_by_side:
            raise InvertAvatarError("invalid_option", "The side-by-side view needs the driving clip, not its tracks.",
                                    "Drive with the clip itself, or leave out --side-by-side.")
        records = tracks["frames"]
        rate = fps or tracks.get("fps") or 25.0
        camera = portrait_camera(np.asarray(bundle.mesh["vertices"]), size, size)
        frames = _driving_frames(drive, [int(r["index"]) for r in records]) if side_by_side else None
        with VideoWriter(output, rate) as video:
            for n, record in enumerate(records):
                if cancel.is_set():
                    raise CancelledError()
                arkit = dict(zip(tracks.get("arkit_names", []), record["arkit"])) if tracks.get("arkit_names") \
                    else np.asarray(record["arkit"], np.float32)
                image = render(bundle, name, arkit, record.get("head_rotation", (1.0, 0, 0, 0)),
                               record.get("head_translation", (0.0, 0, 0)), record.get("gaze"), camera,
                               neural_resolution=neural_resolution).image
                if frames is not None:
                    driving = next(frames, None)
                    if driving is None:
                        raise InvertAvatarError("unreadable_input", f"{drive.name} ended before its tracked frame "
                                                f"{record['index']}.", "Re-encode the clip and try again.")
                    image = _side_by_side(driving, image)
                video.write(image)
                report("render", TRACK_SHARE + (1 - TRACK_SHARE) * (n + 1) / len(records),
                       f"frame {n + 1}/{len(records)}")
    return AnimateResult(Path(output), len(records), name, float(rate))
