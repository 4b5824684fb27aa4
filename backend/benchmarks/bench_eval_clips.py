"""Self-reenactment quality against K on a folder of real clips (issue 15): numbers only, no frames.

    PYTHONPATH=backend .venv/bin/python backend/benchmarks/bench_eval_clips.py [CLIP_DIR] [--work DIR] [--frames 1,2,4,8,16]
        [--quick]

CLIP_DIR defaults to the development clips beside the clone (../shared/devset/clips). --quick evaluates only the
first clip at K = 1, 4 and writes eval_clips_quick.* so that the full figures stay.

Runs ``invertavatar eval`` (the pipeline's own keyframe choice for each K) on every clip found in CLIP_DIR, one
after the other, keeping each clip's report in ``--work`` (a clip whose report is already there is not run again).
Writes docs/benchmarks/eval_clips.json (per clip and K: keyframes used, PSNR/SSIM mean, landmark error) and
eval_clips.png (PSNR and keyframes used against K, one line per clip). No picture of the clips is written: the
development clips' licences are for testing only.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"
CLIP_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def evaluate_folder(clips: list[Path], work: Path, frames: list[int]) -> list[dict]:
    """One eval report per clip (run, or read back when ``work`` already holds it)."""
    from invertavatar.evaluation.protocol import EvalSpec, evaluate_clip

    reports = []
    for clip in clips:
        folder = work / clip.stem
        saved = folder / "eval.json"
        if saved.is_file():
            reports.append(json.loads(saved.read_text()))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        report, _ = evaluate_clip(EvalSpec(clip=clip, frames=frames), progress=lambda m: print(f"  {m}", flush=True))
        report["seconds"] = round(time.perf_counter() - started, 1)
        saved.write_text(json.dumps(report, indent=1))
        reports.append(report)
        print(f"{clip.name}: done in {report['seconds']} s", flush=True)
    return reports


def summarise(reports: list[dict]) -> list[dict]:
    rows = []
    for report in reports:
        runs = [{"k": run["k"], "keyframes_used": run["keyframes_used"],
                 "psnr": run["summary"]["psnr"]["mean"], "ssim": run["summary"]["ssim"]["mean"],
                 "landmark_error_iod": run["summary"]["landmark_error_iod"]["mean"],
                 "tracked_share": run["summary"]["tracked_share"]} for run in report["runs"]]
        clip = report["clip"]
        rows.append({"clip": clip["name"], "frames": clip["frames"], "size": [clip["width"], clip["height"]],
                     "build_frames": clip["build_frames"][1] - clip["build_frames"][0], "runs": runs})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for row in rows:
        ks = [r["k"] for r in row["runs"]]
        left.plot(ks, [r["psnr"] for r in row["runs"]], marker="o", label=Path(row["clip"]).stem[:24])
        right.plot(ks, [r["keyframes_used"] for r in row["runs"]], marker="o")
    for axis in (left, right):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("K (keyframes asked for)")
        axis.grid(alpha=0.3)
    right.plot([1, 2, 4, 8, 16], [1, 2, 4, 8, 16], "k--", lw=0.8, label="K")
    left.set_ylabel("held-out PSNR in the face mask (dB)")
    right.set_ylabel("keyframes used")
    left.legend(fontsize=7)
    fig.suptitle("Self-reenactment on real clips against the number of keyframes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", type=Path, nargs="?", default=ROOT.parent / "shared" / "devset" / "clips")
    parser.add_argument("--work", type=Path, default=Path("eval_clips_work"))
    parser.add_argument("--frames", default="1,2,4,8,16")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not args.clips.is_dir():
        raise SystemExit(f"No clip folder at {args.clips}: give a folder of clips of one face each.")
    clips = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in CLIP_SUFFIXES)
    frames = [int(k) for k in args.frames.split(",")]
    name = "eval_clips"
    if args.quick:
        clips, frames, name = clips[:1], [1, 4], "eval_clips_quick"
        args.work = args.work / "quick"
    rows = summarise(evaluate_folder(clips, args.work, frames))
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "eval_clips", "frames": frames, "clips": rows,
              "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()}}
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1))
    plot(rows, OUT / f"{name}.png")
    for row in rows:
        cells = "  ".join(f"K{r['k']}:{r['keyframes_used']}kf {r['psnr']:.2f}dB" for r in row["runs"])
        print(f"{row['clip'][:34]:34s} {cells}")


if __name__ == "__main__":
    main()
