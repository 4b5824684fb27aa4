"""``invertavatar bench``: run every script in backend/benchmarks/ with small defaults and tabulate the runs.

Each benchmark is its own process (so one failing or leaking does not spoil the next) and writes its own
docs/benchmarks/NAME.json and .png. This module records how each run went in docs/benchmarks/runs.json (merged with
earlier runs, so ``--only`` keeps the others' rows) and rewrites docs/benchmarks/README.md from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..errors import InvertAvatarError

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "backend" / "benchmarks"
DOCS = ROOT / "docs" / "benchmarks"

#: Small defaults per benchmark (the ones its own docstring documents as quick); unknown scripts run without options.
BENCHMARKS: dict[str, list[str]] = {
    "addon_import": ["--repeats", "2", "--frames", "250"],
    "detect": ["--frames", "20", "--fan-frames", "2"],
    "eval": ["--quick"],
    "eval_clips": ["--quick"],
    "incremental_proof": ["--minutes", "3", "--identities", "8", "--frames", "4", "--test-people", "2",
                          "--targets", "2"],
    "inversion_step": ["--frames", "16", "--repeats", "1"],
    "neural_prior": ["--tiny-frames", "5", "--official-frames", "1"],
    "neural_render": ["--quick"],
    "pipeline": ["--quick"],
    "rasterizer": ["--repeats", "3"],
    "server": ["--repeats", "1"],
}


def discover() -> dict[str, Path]:
    """Every ``bench_NAME.py`` in backend/benchmarks/, by NAME."""
    if not SCRIPTS.is_dir():
        raise InvertAvatarError("not_found", f"No benchmark folder at {SCRIPTS}.",
                                "Run `invertavatar bench` from a source checkout of the repository.")
    return {p.stem[len("bench_"):]: p for p in sorted(SCRIPTS.glob("bench_*.py"))}


def run_one(name: str, script: Path, timeout: float) -> dict:
    """Run one benchmark; returns its status, wall time, command and the tail of its error output."""
    options = BENCHMARKS.get(name, [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "backend"),
                                                                      os.environ.get("PYTHONPATH")])))
    started, stamp = time.perf_counter(), time.time()
    record = {"name": name, "command": " ".join(["python", str(script.relative_to(ROOT)), *options]),
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        done = subprocess.run([sys.executable, str(script), *options], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
        record["status"] = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        record["error_tail"] = None if done.returncode == 0 else done.stderr.strip().splitlines()[-5:]
    except subprocess.TimeoutExpired:
        record["status"], record["error_tail"] = f"timed out after {timeout:.0f} s", None
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["outputs"] = sorted(p.name for p in DOCS.glob("*") if p.suffix in (".json", ".png", ".md")
                               and p.name not in ("README.md", "runs.json") and p.stat().st_mtime >= stamp)
    return record


def run_benchmarks(only: list[str] | None = None, timeout: float = 1800.0,
                   echo: Callable[[str], None] = print) -> list[dict]:
    """Run the chosen (default: all) benchmarks, then update runs.json and README.md; returns this run's records."""
    scripts = discover()
    unknown = sorted(set(only or []) - set(scripts))
    if unknown:
        raise InvertAvatarError("invalid_option", f"No benchmark named {', '.join(unknown)}.",
                                f"Choose from {', '.join(scripts)}.")
    results = []
    for name in only or list(scripts):
        echo(f"running {name} ...")
        record = run_one(name, scripts[name], timeout)
        echo(f"  {record['status']} in {record['seconds']} s")
        results.append(record)
    DOCS.mkdir(parents=True, exist_ok=True)
    runs_path = DOCS / "runs.json"
    runs = json.loads(runs_path.read_text()) if runs_path.is_file() else {}
    runs.update({r["name"]: r for r in results})
    runs_path.write_text(json.dumps(runs, indent=1))
    (DOCS / "README.md").write_text(readme(runs))
    echo(f"wrote {DOCS / 'README.md'}")
    return results


def readme(runs: dict[str, dict]) -> str:
    """The benchmark table and the machine it ran on."""
    from .report import machine

    info = machine()
    lines = ["# Benchmarks", "",
             "Written by `invertavatar bench` (small defaults; each script's docstring gives its full-size options). "
             "Every figure is wall-clock time on the machine below; the JSON files hold the numbers, the PNGs plot "
             "them.", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, torch threads {info['torch_threads']}, Python "
             f"{info['python']} on {info['system']}; load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}.",
             "", "| benchmark | status | wall time | when | outputs | command |", "|---|---|---|---|---|---|"]
    for name in sorted(runs):
        r = runs[name]
        outputs = " ".join(f"[{o}]({o})" for o in r.get("outputs", [])) or "-"
        lines.append(f"| {name} | {r['status']} | {r['seconds']} s | {r['date']} | {outputs} | `{r['command']}` |")
    failed = [r for r in runs.values() if r["status"] != "ok" and r.get("error_tail")]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            lines += [f"**{r['name']}**:", "", "```", *r["error_tail"], "```", ""]
    return "\n".join(lines) + "\n"
