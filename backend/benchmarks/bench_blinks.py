"""Do the avatar's blinks close? The tracked eyeBlink of a clip against the detector's own blink score (issue 14).

    python backend/benchmarks/bench_blinks.py [CLIP]    # default ../shared/devset/clips/sadtalker_wda_katiehill_000.mp4

The clip is reconstructed by the ordinary pipeline; MediaPipe's blendshape scores of every frame (its blink scores
reach about 0.6 on a shut eye: docs/how-it-works.md) are read separately. Reported: the correlation of the tracked
blink (mean of both eyes) with the score over the clip, and the tracked blink on the frames the detector scores
highest (closed or closing eyes), with their scores. Writes docs/benchmarks/blinks.json (numbers only).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"
DEFAULT = ROOT.parent / "shared" / "devset" / "clips" / "sadtalker_wda_katiehill_000.mp4"
TOP_FRAMES = 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, nargs="?", default=DEFAULT)
    args = parser.parse_args()
    if not args.clip.is_file():
        parser.error(f"no clip at {args.clip}: pass a video of a face")
    from invertavatar.detect import make_detector
    from invertavatar.errors import InvertAvatarError
    from invertavatar.headmodel import ARKIT_NAMES
    from invertavatar.io.bundle import read_bundle
    from invertavatar.io.frames import open_source
    from invertavatar.pipeline import JobSpec, run_job

    started = time.perf_counter()
    blinks = [ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")]
    with tempfile.TemporaryDirectory() as tmp:
        result = run_job(JobSpec([args.clip], Path(tmp) / "clip.avatar"))
        tracked = {int(f["index"]): float(np.mean(np.asarray(f["arkit"])[blinks]))
                   for f in read_bundle(result.bundle).tracks["frames"]}
    scores = {}
    with make_detector("mediapipe") as detector:
        source = open_source(args.clip)
        for frame in source:
            try:
                scores[frame.index] = float(np.mean(detector.detect(frame.image).blendshapes[blinks]))
            except InvertAvatarError:  # a frame without a face has no score (the job skipped it too)
                continue
        source.close()
    frames = sorted(set(tracked) & set(scores))
    fitted = np.array([tracked[i] for i in frames])
    score = np.array([scores[i] for i in frames])
    top = [frames[i] for i in np.argsort(-score)[:TOP_FRAMES]]
    report = {"benchmark": "bench_blinks.py", "clip": args.clip.name, "frames": len(frames),
              "correlation": round(float(np.corrcoef(fitted, score)[0, 1]), 4),
              "top_frames": [{"frame": i, "detector_score": round(scores[i], 3), "tracked": round(tracked[i], 3)}
                             for i in sorted(top)],
              "tracked_on_top_frames_mean": round(float(np.mean([tracked[i] for i in top])), 4),
              "detector_on_top_frames_mean": round(float(np.mean([scores[i] for i in top])), 4),
              "seconds": round(time.perf_counter() - started, 1)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "blinks.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "top_frames"}, indent=2))


if __name__ == "__main__":
    main()
