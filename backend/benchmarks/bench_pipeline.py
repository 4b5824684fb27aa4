"""Pipeline benchmarks (issue 3): one photo → bundle, clip throughput, incremental cost, long-clip peak memory.

    python backend/benchmarks/bench_pipeline.py [--quick] [--long-minutes 10]

Writes docs/benchmarks/pipeline.json and pipeline.png. Clips are synthetic renders of the ICT head textured with the
astronaut's reconstruction (decoding and detection are real); every number is wall-clock on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"


def machine() -> dict:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_average": os.getloadavg()}


def one_photo(folder: Path) -> dict:
    from invertavatar.cli.reconstruct_cmd import sample_photo
    from invertavatar.pipeline import JobSpec, run_job

    photo = sample_photo("astronaut", folder)
    runs = []
    for i in range(2):  # the first run also builds the UV caches; the second is what a user sees afterwards
        started = time.perf_counter()
        result = run_job(JobSpec([photo], folder / f"photo{i}.avatar"))
        runs.append({"seconds": time.perf_counter() - started, "stages": result.timings})
    return {"first_run": runs[0], "warm_run": runs[1], "goal_seconds": 10}


def write_synthetic_clip(path: Path, frames: int, size: int, fps: int, albedo: np.ndarray, distinct: int = 24) -> Path:
    """A head turning and talking; ``distinct`` rendered frames repeat to make long clips cheap to encode."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_clip

    from invertavatar.headmodel import load_head_model
    from invertavatar.pipeline.synthetic import render_view

    model = load_head_model()
    jaw = model.expression_names.index("jawOpen")
    rendered = []
    for i in range(distinct):
        expression = np.zeros(model.n_expression, np.float32)
        expression[jaw] = 0.4 * (1 - np.cos(2 * np.pi * i / distinct))
        yaw = 0.5 * np.sin(2 * np.pi * i / distinct)
        rendered.append(render_view(model, np.zeros(model.n_identity), expression, (yaw, 0, 0), albedo,
                                    size=size).image)
    return write_clip(path, (rendered[i % distinct] for i in range(frames)), fps=fps)


def clip_throughput(folder: Path, albedo: np.ndarray, frames: int) -> dict:
    from invertavatar.pipeline import JobSpec, run_job

    clip = write_synthetic_clip(folder / "clip512.mp4", frames, 512, 30, albedo)
    started = time.perf_counter()
    result = run_job(JobSpec([clip], folder / "clip.avatar", max_frames=8))
    seconds = time.perf_counter() - started
    tracked = result.manifest["frames"]["seen"]
    return {"frames": tracked, "seconds": seconds, "frames_per_second": tracked / seconds,
            "stages": result.timings, "goal_frames_per_second": 10}


def incremental_cost(albedo: np.ndarray, frames: int = 64) -> dict:
    """Seconds to add keyframe n (detection excluded) for n = 1..frames; the state must keep the cost flat."""
    import torch

    from invertavatar.detect import make_detector
    from invertavatar.headmodel import load_head_model
    from invertavatar.pipeline.synthetic import render_view
    from invertavatar.render import Camera
    from invertavatar.texture import TextureFusion
    from invertavatar.track import Tracker

    model = load_head_model()
    tracker, fusion = Tracker(model), TextureFusion(model, 1024)
    views = []
    with make_detector("mediapipe") as detector:
        for i in range(8):
            view = render_view(model, np.zeros(model.n_identity), np.zeros(model.n_expression),
                               (0.6 * np.sin(i), 0.15 * np.cos(i), 0), albedo, size=512)
            views.append((view.image, detector.detect(view.image, f"view {i}")))
    costs = []
    for n in range(frames):
        image, detection = views[n % len(views)]
        started = time.perf_counter()
        fit = tracker.add_frame(detection, image.shape[:2], keyframe=True)
        k, r, t = fit.camera_tensors()
        vertices = model.evaluate(torch.from_numpy(tracker.identity).float()[None],
                                  torch.from_numpy(fit.expression).float()[None])[0].numpy()
        fusion.add_frame(image, vertices, Camera(k, r, t, 512, 512))
        costs.append(time.perf_counter() - started)
    # The views repeat every len(views) keyframes and differ in cost (how much of the head each sees), so the same
    # views are compared: the second round (the first pays for first use) against the last, each by its median.
    rounds = np.asarray(costs[: frames - frames % len(views)]).reshape(-1, len(views))
    early, late = float(np.median(rounds[1 if len(rounds) > 1 else 0])), float(np.median(rounds[-1]))
    return {"seconds_per_frame": costs, "frame_2": early, "frame_64": late, "round_medians":
            np.median(rounds, axis=1).round(4).tolist(), "ratio_64_over_2": late / early, "goal_ratio": 1.1}


LONG_CLIP_CHILD = """
import json, sys, time
from pathlib import Path
from invertavatar.pipeline import JobSpec, run_job
started = time.perf_counter()
result = run_job(JobSpec([Path(sys.argv[1])], Path(sys.argv[2]), every=int(sys.argv[3]), max_frames=8,
                         texture_size=512))
# VmHWM is this process image's own peak (ru_maxrss would include the parent's size at fork).
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"peak_rss_mb": peak_kb / 1024,
                  "seconds": time.perf_counter() - started, "frames": result.manifest["frames"]}))
"""


def long_clip_memory(folder: Path, albedo: np.ndarray, minutes: float, every: int) -> dict:
    """Peak RSS of a separate process reconstructing a long clip (streamed: it must not grow with length)."""
    results = {}
    for label, length in (("short", minutes / 10), ("long", minutes)):
        frames = int(length * 60 * 30)
        clip = write_synthetic_clip(folder / f"{label}.mp4", frames, 256, 30, albedo)
        out = subprocess.run([sys.executable, "-c", LONG_CLIP_CHILD, str(clip), str(folder / f"{label}.avatar"),
                              str(every)], capture_output=True, text=True, check=True)
        results[label] = {"minutes": length, "clip_frames": frames, "every": every,
                          **json.loads(out.stdout.strip().splitlines()[-1])}
    results["goal_peak_mb"] = 3072
    return results


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    costs = report["incremental"]["seconds_per_frame"]
    axes[0].plot(range(1, len(costs) + 1), costs, ".-")
    axes[0].set(title="cost of adding keyframe n", xlabel="n", ylabel="seconds", ylim=(0, None))
    stages = report["one_photo"]["warm_run"]["stages"]
    axes[1].bar(list(stages), list(stages.values()))
    axes[1].set(title=f"one photo → bundle: {report['one_photo']['warm_run']['seconds']:.1f} s", ylabel="seconds")
    memory = report.get("long_clip", {})
    if memory:
        labels = [k for k in ("short", "long") if k in memory]
        axes[2].bar([f"{memory[k]['minutes']:.1f} min" for k in labels], [memory[k]["peak_rss_mb"] for k in labels])
        axes[2].axhline(3072, color="r", ls="--", label="goal 3 GB")
        axes[2].set(title="peak memory, streamed clip", ylabel="MB")
        axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (the `bench` runner's default)")
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--every", type=int, default=10, help="long clip: consider every Nth frame")
    args = parser.parse_args()
    report = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report["one_photo"] = one_photo(folder)
        from invertavatar.io.bundle import read_bundle

        albedo = read_bundle(folder / "photo1.avatar").albedo
        report["clip_512"] = clip_throughput(folder, albedo, 60 if args.quick else 300)
        report["incremental"] = incremental_cost(albedo, 16 if args.quick else 64)
        if not args.quick:
            report["long_clip"] = long_clip_memory(folder, albedo, args.long_minutes, args.every)
    report["peak_rss_mb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pipeline.json").write_text(json.dumps(report, indent=2))
    plot(report, OUT / "pipeline.png")
    summary = {k: v for k, v in report.items() if k not in ("incremental",)}
    print(json.dumps(summary, indent=2))
    print("incremental ratio 64/2:", report["incremental"]["ratio_64_over_2"])


if __name__ == "__main__":
    main()
