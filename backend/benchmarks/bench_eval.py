"""Evaluation benchmark (issue 8): self-reenactment quality vs input frames K, and the harness's CPU time.

    PYTHONPATH=backend .venv/bin/python backend/benchmarks/bench_eval.py [--quick] [--frames 300] [--size 512]

Renders a clip of the ICT head textured with the astronaut photo's reconstruction (head turning, nodding and
talking; every frame rendered, none repeated), then runs ``invertavatar eval`` on it (K = 1, 2, 4, 8, 16; quick:
60 frames at 384², K = 1, 4). Writes docs/benchmarks/eval.json (the eval report plus timings and the goal: a 300-frame
512² clip with K up to 16 within 10 minutes on a 2-core CPU), eval.png and eval_strip.png; --quick writes
eval_quick.* instead, so the full-size figures stay.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"
GOAL_SECONDS = 600


def synthetic_clip(path: Path, frames: int, size: int, albedo: np.ndarray, fps: int = 30, hold: int = 1) -> Path:
    """A head turning left-right (period 4 s), nodding and talking; the last part repeats no earlier frame.

    ``hold`` > 1 shows each rendered pose for that many frames (a lower-rate source), to save rendering time.
    """
    from invertavatar.evaluation.protocol import encode_clip
    from invertavatar.headmodel import load_head_model
    from invertavatar.pipeline.synthetic import render_view

    model = load_head_model()
    names = model.expression_names
    jaw, smile = names.index("jawOpen"), (names.index("mouthSmile_L"), names.index("mouthSmile_R"))

    def images():
        rendered = None
        for i in range(frames):
            if i % hold:
                yield rendered
                continue
            t = i / fps
            expression = np.zeros(model.n_expression, np.float32)
            expression[jaw] = 0.35 * (1 - np.cos(2 * np.pi * t / 1.3))
            expression[list(smile)] = 0.5 * max(0.0, np.sin(2 * np.pi * t / 3.1))
            pose = (0.7 * np.sin(2 * np.pi * t / 4.0), 0.15 * np.sin(2 * np.pi * t / 2.7), 0.05 * np.sin(t))
            rendered = render_view(model, np.zeros(model.n_identity), expression, pose, albedo, size=size).image
            yield rendered

    return encode_clip(path, images(), fps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (the `bench` runner's default)")
    parser.add_argument("--frames", type=int, default=None, help="clip length (default 300; quick 60)")
    parser.add_argument("--size", type=int, default=None, help="frame side in pixels (default 512; quick 384)")
    parser.add_argument("--hold", type=int, default=1, help="show each rendered pose for N frames (faster set-up)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    frames = args.frames or (60 if args.quick else 300)
    size = args.size or (384 if args.quick else 512)
    ks = [1, 4] if args.quick else [1, 2, 4, 8, 16]

    from invertavatar.cli.reconstruct_cmd import sample_photo
    from invertavatar.evaluation import EvalSpec, evaluate_clip
    from invertavatar.evaluation.report import write_report
    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo = sample_photo("astronaut", folder)
        albedo = read_bundle(run_job(JobSpec([photo], folder / "astronaut.avatar")).bundle).albedo
        started = time.perf_counter()
        clip = synthetic_clip(folder / "synthetic.mp4", frames, size, albedo, hold=args.hold)
        render_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report, strips = evaluate_clip(EvalSpec(clip, frames=ks), progress=lambda m: print(m, flush=True))
        seconds = time.perf_counter() - started
    report["benchmark"] = {"name": "eval", "clip": f"synthetic ICT head, astronaut texture, {frames} frames, "
                           f"{size}² at 30 fps, each pose held {args.hold} frame(s)", "render_clip_seconds": round(render_seconds, 1),
                           "eval_seconds": round(seconds, 1), "goal_seconds": GOAL_SECONDS if frames >= 300 else None,
                           "load_average": os.getloadavg()}
    written = write_report(report, strips, args.out, stem="eval_quick" if args.quick else "eval")
    for run in report["runs"]:
        if "summary" in run:
            s = run["summary"]
            print(f"K={run['k']:>2} keyframes={run['keyframes_used']:>2} PSNR={s['psnr']['mean'] if s['psnr'] else '-'}"
                  f" SSIM={s['ssim']['mean'] if s['ssim'] else '-'} tracked={s['tracked_share']:.0%}")
    print(f"eval took {seconds:.0f} s; wrote {', '.join(p.name for p in written)}")
    print(json.dumps(report["benchmark"]))


if __name__ == "__main__":
    main()
