"""Benchmark: face detection time per 512×512 frame on this machine's CPU.

Measures `MediaPipeDetector.detect` end to end (input checks, Face Landmarker, the extra face-detector pass for the
score, conversions) and, separately, its two MediaPipe passes; and the FAN detector when face-alignment is installed
(with random weights of the right shape when the real ones are absent: the speed of a network does not depend on its
weight values, its output does, so those landmarks are not looked at). Writes docs/benchmarks/detect.json and
docs/benchmarks/detect.png (timings, plus the 478 points and the iBUG-68 subset drawn on both test photos).

    PYTHONPATH=backend INVERTAVATAR_ASSETS=../shared/assets python backend/benchmarks/bench_detect.py [--frames 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"
LABELS = {"mediapipe_detect_total": "MediaPipe detect(), total", "mediapipe_landmarker_pass": "… landmarker pass",
          "mediapipe_score_pass": "… score pass (face detector)", "fan_detect_total_cpu": "FAN detect(), total",
          "mediapipe_no_face_1024_tiled": "no face, 1024² (9 tiles)"}


def test_frames() -> dict[str, np.ndarray]:
    """The two public-domain photos, each as a 512×512 RGB frame."""
    import matplotlib
    from PIL import Image
    from skimage import data

    grace = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    grace = grace.crop((0, 44, 512, 556))  # 512×600 → the central 512×512
    return {"astronaut": data.astronaut(), "grace_hopper": np.asarray(grace)}


def time_calls(call, frames: list[np.ndarray], repeats: int) -> list[float]:
    """Milliseconds of ``call(frame)`` over ``repeats`` calls cycling through ``frames`` (after one warm-up)."""
    call(frames[0])
    times = []
    for i in range(repeats):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        call(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_ms": statistics.median(ordered), "p10_ms": ordered[len(ordered) // 10],
            "p90_ms": ordered[(9 * len(ordered)) // 10], "n": len(ordered)}


def _expect_no_face(det, frame: np.ndarray) -> None:
    from invertavatar.errors import InvertAvatarError

    try:
        det.detect(frame, "blank")
    except InvertAvatarError:
        return
    raise RuntimeError("a face was found in a blank frame")


def bench_mediapipe(frames: list[np.ndarray], repeats: int) -> dict[str, dict[str, float]]:
    import mediapipe as mp

    from invertavatar.detect import make_detector

    results = {}
    with make_detector("mediapipe") as det:
        results["mediapipe_detect_total"] = summary(time_calls(lambda f: det.detect(f, "bench"), frames, repeats))
        # The two passes inside detect(), on a prepared mp.Image (private attributes: a benchmark may peek).
        images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f)) for f in frames]
        index = {id(f): i for i, f in enumerate(frames)}
        results["mediapipe_landmarker_pass"] = summary(time_calls(
            lambda f: det._landmarker.detect(images[index[id(f)]]), frames, repeats))
        results["mediapipe_score_pass"] = summary(time_calls(
            lambda f: det._face_detector.detect(images[index[id(f)]]), frames, repeats))
        # Worst case: a 1024² frame without a face, searched again in tiles before giving up.
        blank = [np.full((1024, 1024, 3), 128, np.uint8)]
        results["mediapipe_no_face_1024_tiled"] = summary(time_calls(
            lambda f: _expect_no_face(det, f), blank, max(5, repeats // 6)))
    return results


def bench_fan(frames: list[np.ndarray], repeats: int) -> tuple[dict[str, dict[str, float]], str]:
    """FAN timings, or an empty dict and the reason it was not measured."""
    try:
        import face_alignment  # noqa: F401
        import torch
    except ImportError:
        return {}, "face-alignment not installed"
    from invertavatar.detect import make_detector
    from invertavatar.detect.fan_detector import FAN_WEIGHTS_FILE, fan_weights_path

    note = "real weights"
    with tempfile.TemporaryDirectory() as tmp:
        if not fan_weights_path().is_file():
            from face_alignment.models import FAN

            os.environ["TORCH_HOME"] = tmp
            (Path(tmp) / "hub" / "checkpoints").mkdir(parents=True)
            torch.save(FAN(4).state_dict(), Path(tmp) / "hub" / "checkpoints" / FAN_WEIGHTS_FILE)
            note = "random weights of the right shape (speed only)"
        with make_detector("fan", device="cpu") as det:
            times = time_calls(lambda f: det.detect(f, "bench"), frames, repeats)
    return {"fan_detect_total_cpu": summary(times)}, note


def plot(results: dict[str, dict[str, float]], frames: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invertavatar.detect import make_detector
    from invertavatar.detect.landmark_schemes import MEDIAPIPE_TO_IBUG68

    fig = plt.figure(figsize=(15, 5.2))
    ax = fig.add_subplot(1, 3, 1)
    names = list(results)
    medians = [results[n]["median_ms"] for n in names]
    errors = [[m - results[n]["p10_ms"] for n, m in zip(names, medians)],
              [results[n]["p90_ms"] - m for n, m in zip(names, medians)]]
    ax.barh(range(len(names)), medians, xerr=errors, color="tab:blue", capsize=3)
    ax.set_yticks(range(len(names)), [LABELS.get(n, n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ms per 512×512 frame unless noted (median, bars p10–p90)")
    for i, m in enumerate(medians):
        ax.text(m, i, f" {m:.1f}", va="center", fontsize=8)
    ax.set_title(f"Face detection on {os.cpu_count()} CPU cores")
    with make_detector("mediapipe") as det:
        for k, (name, image) in enumerate(frames.items()):
            found = det.detect(image, name)
            axi = fig.add_subplot(1, 3, 2 + k)
            x0, y0, x1, y1 = found.box
            pad = 0.08 * (x1 - x0)
            axi.imshow(image)
            axi.set_xlim(x0 - pad, x1 + pad)
            axi.set_ylim(y1 + pad, y0 - pad)
            axi.plot(*found.landmarks[:468].T, ".", ms=1.5, color="cyan")
            axi.plot(*found.landmarks[468:].T, ".", ms=2.5, color="lime")
            ibug = found.landmarks[MEDIAPIPE_TO_IBUG68]
            axi.plot(*ibug.T, "o", ms=3, color="red")
            for i, (x, y) in enumerate(ibug):
                axi.text(x + 1, y - 1, str(i), color="yellow", fontsize=5)
            axi.set_title(f"{name}: 478 points (cyan, irises green), iBUG-68 (red)", fontsize=8)
            axi.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="timed calls per configuration (MediaPipe)")
    parser.add_argument("--fan-frames", type=int, default=6, help="timed calls for FAN (slow on CPU)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    frames = test_frames()
    frame_list = list(frames.values())
    results = bench_mediapipe(frame_list, args.frames)
    fan, fan_note = bench_fan(frame_list, args.fan_frames)
    results.update(fan)

    import mediapipe

    report = {
        "benchmark": "detect",
        "frame_size": [512, 512],
        "frames": list(frames),
        "results": results,
        "fan_note": fan_note,
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
                    "platform": platform.platform(), "python": sys.version.split()[0],
                    "mediapipe": mediapipe.__version__},
        "note": "Wall-clock on a shared development machine; other jobs may have been running.",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detect.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, frames, args.out / "detect.png")
    for name, stats in results.items():
        print(f"{name:34s} median {stats['median_ms']:8.1f} ms  (p10 {stats['p10_ms']:.1f}, p90 {stats['p90_ms']:.1f})")
    print(f"wrote {args.out / 'detect.json'} and {args.out / 'detect.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
