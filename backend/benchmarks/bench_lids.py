"""Do the avatar's eyes open as far as the person's? A closed loop through the same detector (issue 14).

    python backend/benchmarks/bench_lids.py [PHOTO_DIR]    # default ../shared/devset/photos/human

Every photo is reconstructed by the ordinary pipeline; the avatar is rendered through the photo's own fit (the
evaluation's renderer, re-lit with the photo's light) and MediaPipe reads the render as it read the photo. The
eyelid opening (three upper/lower contour pairs per eye, in eye distances) of the render over the photo's is the
ratio: 1 means the lids sit where the person's do as the detector sees both. The iris is read the same way: its
radius (the four ring points around the centre, in eye distances), render over photo, and how far its centre sits
above the middle of the opening (in opening heights). Writes docs/benchmarks/lids.json (numbers only: the devset's
pictures stay out of the repository).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from invertavatar.detect.landmark_schemes import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, lid_pairs

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"

#: MediaPipe eyelid contour pairs (upper, lower) across the middle of each eye.
PAIRS = {"right": lid_pairs(RIGHT_EYE_CONTOUR)[2:5], "left": lid_pairs(LEFT_EYE_CONTOUR)[2:5]}
#: The subject's right eye is MediaPipe's first iris (468-472), the left its second.
IRIS = {"right": slice(468, 473), "left": slice(473, 478)}


def opening(detection, eye: str) -> float:
    """Mean upper-to-lower lid distance of ``eye`` in eye distances."""
    from invertavatar.track.tracker import inter_ocular

    points = detection.landmarks
    distance = np.mean([np.linalg.norm(points[u] - points[lo]) for u, lo in PAIRS[eye]])
    return float(distance / inter_ocular(points, detection.scheme))


def iris(detection, eye: str) -> tuple[float, float]:
    """(iris radius in eye distances, iris centre's height above the opening's middle in opening heights)."""
    from invertavatar.track.tracker import inter_ocular

    points = detection.landmarks
    ring = points[IRIS[eye]]
    radius = float(np.linalg.norm(ring[1:] - ring[0], axis=1).mean())
    upper = np.mean([points[u] for u, _ in PAIRS[eye]], axis=0)
    lower = np.mean([points[lo] for _, lo in PAIRS[eye]], axis=0)
    height = float(np.linalg.norm(upper - lower))
    above = float((lower - upper) @ (ring[0] - (upper + lower) / 2)) / max(height, 1e-6) ** 2  # image y is down
    return radius / inter_ocular(points, detection.scheme), above


def closed_loop(photo: Path, folder: Path, detector) -> tuple[np.ndarray, object, np.ndarray]:
    """(the photo, its detection, its avatar rendered through the photo's own fit): the photo is reconstructed by the
    ordinary pipeline and drawn by the evaluation's renderer (re-lit with the photo's light) from the same camera.
    Raises InvertAvatarError as the pipeline does."""
    from invertavatar.evaluation.heldout import AvatarRenderer
    from invertavatar.evaluation.metrics import face_mask
    from invertavatar.headmodel import load_head_model
    from invertavatar.io.bundle import read_bundle
    from invertavatar.io.frames import open_source
    from invertavatar.pipeline import JobSpec, run_job
    from invertavatar.track import Tracker

    source = open_source(photo)
    image = next(iter(source)).image
    source.close()
    result = run_job(JobSpec([photo], folder / f"{photo.stem}.avatar"))
    model = load_head_model()
    renderer = AvatarRenderer(model, read_bundle(result.bundle))
    detection = detector.detect(image, photo.name)
    fit = Tracker(model, state=renderer.state).add_frame(detection, image.shape[:2], keyframe=False)
    return image, detection, renderer.render(fit, image, face_mask(detection.landmarks, image.shape[:2]))


def measure(photo: Path, folder: Path, detector) -> dict:
    """The photo's and its avatar's lid openings and irises, or the error that stopped it."""
    from invertavatar.errors import InvertAvatarError

    try:
        _, detection, rendered = closed_loop(photo, folder, detector)
        seen = detector.detect(rendered, f"render of {photo.name}")
    except InvertAvatarError as exc:
        return {"photo": photo.name, "error": exc.code}
    record = {"photo": photo.name}
    for eye in PAIRS:
        record[eye] = {"photo": round(opening(detection, eye), 4), "render": round(opening(seen, eye), 4)}
        record[eye]["ratio"] = round(record[eye]["render"] / record[eye]["photo"], 4)
        (photo_radius, photo_above), (render_radius, render_above) = iris(detection, eye), iris(seen, eye)
        record[eye]["iris_ratio"] = round(render_radius / photo_radius, 4)
        record[eye]["iris_above"] = {"photo": round(photo_above, 4), "render": round(render_above, 4)}
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
    measured = [r[eye] for r in records if "error" not in r for eye in PAIRS]
    iris_ratios = np.array([m["iris_ratio"] for m in measured])
    summary["iris_radius_ratio"] = {"mean": round(float(iris_ratios.mean()), 4),
                                    "median": round(float(np.median(iris_ratios)), 4),
                                    "within_10_percent": int(np.count_nonzero(np.abs(iris_ratios - 1) <= 0.1))}
    summary["iris_above_middle"] = {k: round(float(np.median([m["iris_above"][k] for m in measured])), 4)
                                    for k in ("photo", "render")}
    report = {"benchmark": "bench_lids.py", "folder": args.photos.name, "summary": summary, "photos": records,
              "seconds": round(time.perf_counter() - started, 1)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lids.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
