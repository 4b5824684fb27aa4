"""Benchmark: time and peak memory per frame of the Next3D++ prior, ``tiny`` and ``official`` (512 x 512 output).

Each configuration runs in its own subprocess so that peak resident memory is its own. Random weights are used
(the official ones are not available here); speed and memory do not depend on the weight values. Per frame we time
the full synthesis and its stages: the per-avatar backbones (texture + static, cached when driving an avatar), the
per-frame face network with rasterised injection, and volume rendering + super-resolution. Writes
docs/benchmarks/neural_prior.json and docs/benchmarks/neural_prior.png.

    PYTHONPATH=backend python backend/benchmarks/bench_neural_prior.py [--official-frames 2] [--tiny-frames 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(name: str, frames: int, device_name: str | None, threads: int) -> dict:
    """Time ``frames`` syntheses of configuration ``name`` in this process (after one warm-up frame if several)."""
    import torch

    torch.set_num_threads(threads)

    from invertavatar.device import describe_device, select_device
    from invertavatar.neural.config import get_config
    from invertavatar.neural.ops.layers import count_parameters
    from invertavatar.neural.prior.cameras import camera_label, orbit_camera
    from invertavatar.neural.prior.generator import Next3DGenerator

    device = select_device(device_name)
    torch.manual_seed(0)
    config = get_config(name)
    gen = Next3DGenerator(config).to(device).eval()
    res = config.plane_resolution
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    mouth = (xx / 0.3) ** 2 + ((yy - 0.45) / 0.1) ** 2 < 1
    condition = torch.stack([xx * 0.8, yy * 0.8, (((xx / 0.7) ** 2 + (yy / 0.9) ** 2 < 1) & ~mouth).float()], -1)
    condition = condition[None].to(device)
    cam = camera_label(orbit_camera(yaw=0.3))[None].to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    stages: dict[str, list[float]] = {"total": [], "avatar_backbones": [], "face_planes": [], "render_and_sr": []}
    rss_before = _rss_mb()
    with torch.no_grad():
        ws = gen.mapping(torch.randn(1, config.z_dim, device=device), cam)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        warmup = 1 if frames > 1 else 0
        for i in range(frames + warmup):
            sync()
            t0 = time.perf_counter()
            feats = gen.avatar_features(ws)
            sync()
            t1 = time.perf_counter()
            planes = gen.face_planes(feats, ws, condition)
            sync()
            t2 = time.perf_counter()
            out = gen.render(planes, ws, cam)
            sync()
            t3 = time.perf_counter()
            if i < warmup:
                continue
            for key, value in (("total", t3 - t0), ("avatar_backbones", t1 - t0), ("face_planes", t2 - t1),
                               ("render_and_sr", t3 - t2)):
                stages[key].append(value * 1000.0)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "config": name, "device": describe_device(device), "parameters": count_parameters(gen),
        "output_resolution": out.image.shape[-1], "neural_rendering_resolution": config.neural_rendering_resolution,
        "samples_per_ray": config.depth_resolution + config.depth_resolution_importance,
        "frames_timed": len(stages["total"]),
        "ms": {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in stages.items()},
        "driven_frame_ms_median": statistics.median(
            [a + b for a, b in zip(stages["face_planes"], stages["render_and_sr"])]),
        "peak_rss_mb": peak_rss, "rss_with_model_mb": rss_before,
        "peak_rss_over_model_mb": peak_rss - rss_before,
    }
    if device.type == "cuda":
        result["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = [f"{r['config']} {r['output_resolution']}²\n{r['device']}" for r in results]
    parts = [("total", "full synthesis"), ("avatar_backbones", "texture + static backbones (once per avatar)"),
             ("face_planes", "face network + injection (per frame)"), ("render_and_sr", "volume render + SR (per frame)")]
    width = 0.8 / len(parts)
    for i, (key, text) in enumerate(parts):
        values = [r["ms"][key]["median"] / 1000.0 for r in results]
        axes[0].bar([x + (i - 1.5) * width for x in range(len(results))], values, width, label=text)
    axes[0].set_xticks(range(len(results)), labels)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("seconds (median, log scale)")
    axes[0].legend(fontsize=7)
    axes[0].set_title("Next3D++ time per frame")
    axes[1].bar(labels, [r["peak_rss_mb"] for r in results], label="peak RSS")
    axes[1].bar(labels, [r["rss_with_model_mb"] for r in results], label="RSS with model loaded")
    axes[1].set_ylabel("MB")
    axes[1].legend(fontsize=8)
    axes[1].set_title("Memory")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-frames", type=int, default=20)
    parser.add_argument("--official-frames", type=int, default=2)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: select_device())")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from the last JSON")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: run one case, print JSON
    parser.add_argument("--frames", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads((OUT_DIR / "neural_prior.json").read_text())["results"], OUT_DIR / "neural_prior.png")
        return 0
    if args.case:
        print(json.dumps(run_case(args.case, args.frames, args.device, args.threads)))
        return 0
    results = []
    cases = [("tiny", args.tiny_frames, 1), ("tiny", args.tiny_frames, 2), ("official", args.official_frames, 2)]
    for name, frames, threads in cases:
        cmd = [sys.executable, __file__, "--case", name, "--frames", str(frames), "--threads", str(threads)]
        if args.device:
            cmd += ["--device", args.device]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1], indent=1))
    import torch

    report = {"benchmark": "neural_prior", "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "load_average_at_end": os.getloadavg()},
              "note": "random weights; 2-core CPU shared with other jobs, so times are upper bounds", "results": results}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "neural_prior.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, OUT_DIR / "neural_prior.png")
    print(f"wrote {OUT_DIR / 'neural_prior.json'} and neural_prior.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
