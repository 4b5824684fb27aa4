"""``invertavatar eval CLIP`` (self-reenactment quality vs input frames) and ``invertavatar bench`` (every benchmark)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvertAvatarError


def _frame_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive frame counts such as 1,2,4,8,16, got {text!r}")
    return counts


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="measure how well avatars built from K frames reproduce a clip's held-out frames",
        description="Build an avatar from K frames of the clip's first part (the pipeline's own frame choice) for each "
        "K, track its last part with identity and texture frozen, and compare renders with the real frames inside "
        "the face mask. Writes eval.json (docs/evaluation.md), eval.png and eval_strip.png.")
    parser.add_argument("clip", type=Path, help="a video clip of one face")
    parser.add_argument("--frames", type=_frame_counts, default=[1, 2, 4, 8, 16], help="values of K (default 1,2,4,8,16)")
    parser.add_argument("--mode", choices=("fit", "neural"), default="fit")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default CLIP_eval next to the clip)")
    parser.add_argument("--build-share", type=float, default=0.6, help="first share of the clip avatars may use")
    parser.add_argument("--heldout-share", type=float, default=0.3, help="last share of the clip held out")
    parser.add_argument("--max-heldout", type=int, default=24, help="held-out frames scored (spread evenly)")
    parser.add_argument("--every", type=int, default=1, help="build: consider every Nth frame")
    parser.add_argument("--texture-size", type=int, default=512, help="fusion resolution per skin tile")
    parser.add_argument("--landmark-shape-only", action="store_true",
                        help="build: the shape from landmarks alone, without the keyframes' colour agreement")
    parser.set_defaults(func=run)

    bench = subparsers.add_parser("bench", help="run every benchmark in backend/benchmarks with small defaults",
                                  description="Run every backend/benchmarks/bench_*.py with small defaults; each "
                                  "writes docs/benchmarks/*.json, then docs/benchmarks/README.md gets a table.")
    bench.add_argument("--only", nargs="*", default=None, help="benchmark names (e.g. eval pipeline)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks and their small defaults")
    bench.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per benchmark")
    bench.set_defaults(func=run_bench)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import EvalSpec, evaluate_clip
    from ..evaluation.report import write_report

    if not args.clip.is_file():
        raise InvertAvatarError("not_found", f"{args.clip} does not exist.", "Give the path of a video clip.")
    spec = EvalSpec(args.clip, frames=args.frames, mode=args.mode, build_share=args.build_share,
                    heldout_share=args.heldout_share, max_heldout=args.max_heldout, every=args.every,
                    texture_size=args.texture_size, multiview_identity=not args.landmark_shape_only)
    report, strips = evaluate_clip(spec, progress=lambda message: print(message, flush=True))
    out = args.out or args.clip.with_name(f"{args.clip.stem}_eval")
    written = write_report(report, strips, out)
    print(f"{'K':>4} {'kf':>3} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} {'lm/IOD':>7} {'tracked':>8}")
    for run_ in report["runs"]:
        if "error" in run_:
            print(f"{run_['k']:>4}  no avatar: {run_['error']['message']}")
            continue
        s = run_["summary"]
        mean = lambda key, fmt: format(s[key]["mean"], fmt) if s[key] else "-"  # noqa: E731
        print(f"{run_['k']:>4} {run_['keyframes_used']:>3} {mean('psnr', '7.2f')} {mean('ssim', '6.3f')} "
              f"{mean('lpips', '6.3f'):>6} {mean('landmark_error_iod', '7.4f')} {s['tracked_share']:>8.0%}")
    if not report["lpips"]["available"]:
        print(f"LPIPS absent: {report['lpips']['reason']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from ..evaluation.bench import BENCHMARKS, discover, run_benchmarks

    if args.list:
        for name in discover():
            print(f"{name:<20} {' '.join(BENCHMARKS.get(name, [])) or '(its own defaults)'}")
        return 0
    results = run_benchmarks(args.only, timeout=args.timeout, echo=lambda message: print(message, flush=True))
    failed = [r for r in results if r["status"] != "ok"]
    return 1 if failed else 0
