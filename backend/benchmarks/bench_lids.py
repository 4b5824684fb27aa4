"""Do the avatar's eyes open as far as the person's? A closed loop through the same detector (issue 14).

    python backend/benchmarks/bench_lids.py [PHOTO_DIR]    # default ../shared/devset/photos/human

Every photo is reconstructed by the ordinary pipeline; the avatar is rendered through the photo's own fit (the
evaluation's renderer, re-lit with the photo's light) and MediaPipe reads the render as it read the photo. The
eyelid opening (three upper/lower contour pairs per eye, in eye distances) of the render over the photo's is the
ratio: 1 means the lids sit where the person's do as the detector sees both. Writes docs/benchmarks/lids.json
(numbers only: the devset's pictures stay out of the repository).
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
#: MediaPipe eyelid contour pairs (upper, lower) across the middle of each eye.
PAIRS = {"right": ((160, 144), (159, 145), (158, 153)), "left": ((387, 373), (386, 374), (385, 380))}


def opening(detection, eye: str) -> float:
    """Mean upper-to-lower lid distance of ``eye`` in eye distances."""
    from invertavatar.track.tracker import inter_ocular

    points = detection.landmarks
    distance = np.mean([np.linalg.norm(points[u] - points[lo]) for u, lo in PAIRS[eye]])
    return float(distance / inter_ocular(points, detection.scheme))


def measure(photo: Path, folder: Path, detector) -> dict:
    """The photo's and its avatar's lid openings, or the error that stopped it."""
    from invertavatar.errors import InvertAvatarError
    from invertavatar.evaluation.heldout import AvatarRenderer
    from invertavatar.evaluation.metrics import face_mask
    from invertavatar.headmodel import load_head_model
    from invertavatar.io.bundle import read_bundle
    from invertavatar.io.frames import open_source
    from invertavatar.pipeline import JobSpec, run_job
    from invertavatar.track import Tracker

    try:
        source = open_source(photo)
        image = next(iter(source)).image
        source.close()
        result = run_job(JobSpec([photo], folder / f"{photo.stem}.avatar"))
        model = load_head_model()
        renderer = AvatarRenderer(model, read_bundle(result.bundle))
        detection = detector.detect(image, photo.name)
        fit = Tracker(model, state=renderer.state).add_frame(detection, image.shape[:2], keyframe=False)
        rendered = renderer.render(fit, image, face_mask(detection.landmarks, image.shape[:2]))
        seen = detector.detect(rendered, f"render of {photo.name}")
    except InvertAvatarError as exc:
        return {"photo": photo.name, "error": exc.code}
    record = {"photo": photo.name}
    for eye in PAIRS:
        record[eye] = {"photo": round(opening(detection, eye), 4), "render": round(opening(seen, eye), 4)}
        record[eye]["ratio"] = round(record[eye]["render"] / record[eye]["photo"], 4)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, nargs="?", default=ROOT.parent / "shared" / "devset" / "photos" / "human")
    args = parser.parse_args()
    if not args.photos.is_dir():
        parser.error(f"no photo folder at {args.photos}: pass a folder of face photos")
    from invertavatar.detect import make_detector

    started = time.perf_counter()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    with tempfile.TemporaryDirectory() as tmp, make_detector("mediapipe") as detector:
        records = [measure(p, Path(tmp), detector) for p in photos]
    ratios = np.array([r[eye]["ratio"] for r in records if "error" not in r for eye in PAIRS])
    summary = {"eyes": int(len(ratios)), "mean": round(float(ratios.mean()), 4),
               "median": round(float(np.median(ratios)), 4), "min": round(float(ratios.min()), 4),
               "max": round(float(ratios.max()), 4),
               "within_10_percent": int(np.count_nonzero(np.abs(ratios - 1) <= 0.1)),
               "mean_abs_log_ratio": round(float(np.abs(np.log(ratios)).mean()), 4)}
    report = {"benchmark": "bench_lids.py", "folder": args.photos.name, "summary": summary, "photos": records,
              "seconds": round(time.perf_counter() - started, 1)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lids.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
