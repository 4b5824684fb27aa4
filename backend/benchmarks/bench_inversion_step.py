"""Benchmark: cost of adding one frame to an inversion session at frame 2 and at frame 64 (goal: flat).

``tiny`` on CPU (and ``official`` on CUDA when a GPU is present), random weights (cost does not depend on them),
streaming grouping. Frames are synthetic ICT renders, reused cyclically. Also reports the state size in bytes,
which must not grow with the number of frames. Writes docs/benchmarks/inversion_step.json and .png.

    OMP_NUM_THREADS=1 PYTHONPATH=backend python backend/benchmarks/bench_inversion_step.py [--frames 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from invertavatar.headmodel import load_head_model
from invertavatar.neural.inversion.config import configs
from invertavatar.neural.inversion.model import InversionNet
from invertavatar.neural.inversion.session import InversionSession
from invertavatar.neural.prior.generator import Next3DGenerator
from invertavatar.neural.synthetic_data import SyntheticRenderer, random_identity

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"


def measure(size: str, device: torch.device, frames: int, repeats: int) -> dict:
    prior, enc = configs(size)
    torch.manual_seed(0)
    net = InversionNet(Next3DGenerator(prior), enc).to(device).eval()
    rng = np.random.default_rng(0)
    clip = SyntheticRenderer(load_head_model("ict"), prior).clip(random_identity(load_head_model("ict"), rng), 8, rng)
    per_frame = [[] for _ in range(frames)]
    sizes = {}
    for _ in range(repeats):
        session = InversionSession(net)
        for i in range(frames):
            frame = clip.select([i % clip.length])
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            session.add_frames(frame)
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_frame[i].append(time.perf_counter() - start)
            if i + 1 in (2, frames):
                sizes[i + 1] = len(session.state_bytes())
    medians = [statistics.median(t) for t in per_frame]
    return {"size": size, "device": str(device), "frames": frames, "repeats": repeats,
            "add_frame_seconds_at_1": medians[0], "add_frame_seconds_at_2": medians[1],
            f"add_frame_seconds_at_{frames}": medians[-1], "median_seconds_per_frame": medians,
            "state_bytes": {str(k): v for k, v in sizes.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [measure("tiny", torch.device("cpu"), args.frames, args.repeats)]
    if torch.cuda.is_available():
        runs.append(measure("official", torch.device("cuda"), args.frames, 1))
    result = {"runs": runs, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "note": "frame 1 also runs the W+ encoder and the coarse backbones; later frames only the fine stage"}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "inversion_step.json").write_text(json.dumps(result, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for run in runs:
        ax.plot(range(1, run["frames"] + 1), [1000 * s for s in run["median_seconds_per_frame"]], ".-",
                label=f"{run['size']} ({run['device']})")
    ax.set_xlabel("frame index in the session")
    ax.set_ylabel("add_frames time (ms)")
    ax.set_title("cost of adding one frame (streaming)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT_DIR / "inversion_step.png", dpi=110)
    for run in runs:
        last = run["median_seconds_per_frame"][-1]
        print(f"{run['size']} {run['device']}: frame 2 {1000 * run['add_frame_seconds_at_2']:.1f} ms, frame "
              f"{run['frames']} {1000 * last:.1f} ms, state {run['state_bytes']}")


if __name__ == "__main__":
    main()
