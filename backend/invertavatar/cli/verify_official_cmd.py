"""``invertavatar verify-official FIXTURE_DIR``: prove tensor by tensor that we compute what the official code does.

Builds our modules for each parity fixture's configuration, loads the fixture's recipe weights by official names
(the loading path of real checkpoints), runs the fixture's forward in its run-time settings and compares every
stored tensor with its tolerance. Exit status 1 if any comparison fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify-official",
        help="check our networks against the official code's parity fixtures (tensor by tensor)",
        description="Runs parity fixtures (A: prior at reduced width, B: prior at official size, C: W+ encoder, "
        "D1: recurrent U-Nets, D2: few-shot top level) and prints max abs error vs tolerance per tensor.",
    )
    parser.add_argument("fixture_dir", type=Path, help="directory with A.json, A.safetensors, ... (reference/parity)")
    parser.add_argument("--fixture", default="all", choices=("A", "B", "C", "D1", "D2", "all"),
                        help="which fixture to run (default: all; B and D2 take minutes on CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write every row and timing as JSON")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write a Markdown table (one line per tensor, its worst stored form)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.set_defaults(func=run)


def format_table(rows: list) -> str:
    """Fixed-width table: fixture, tensor, form, max abs error, tolerance, ok."""
    lines = [f"{'fixture':7s} {'tensor':38s} {'form':9s} {'max abs err':>11s}  {'tolerance':20s} ok"]
    for r in rows:
        lines.append(f"{r.fixture:7s} {r.tensor:38s} {r.form:9s} {r.max_abs_error:11.3e}  {r.tolerance:20s} "
                     f"{'yes' if r.ok else 'NO'}")
    return "\n".join(lines)


def markdown_table(rows: list, summary: dict) -> str:
    """Per-fixture summary, then one line per tensor with the largest error over its stored forms."""
    lines = ["| fixture | comparisons | failed | seconds |", "|---|---|---|---|"]
    lines += [f"| {name} | {item['rows']} | {item['failed']} | {item['seconds']} |" for name, item in summary.items()]
    lines += ["", "| fixture | tensor | forms | max abs error | tolerance | worst err / bound | ok |",
              "|---|---|---|---|---|---|---|"]
    grouped: dict[tuple[str, str], list] = {}
    for r in rows:
        grouped.setdefault((r.fixture, r.tensor), []).append(r)
    for (fixture, tensor), items in grouped.items():
        worst = max(items, key=lambda r: r.worst_ratio)
        forms = "+".join(r.form for r in items)
        ok = "yes" if all(r.ok for r in items) else "**NO**"
        lines.append(f"| {fixture} | `{tensor}` | {forms} | {max(r.max_abs_error for r in items):.2e} | "
                     f"{worst.tolerance.replace('|', chr(92) + '|')} | {worst.worst_ratio:.3f} | {ok} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import torch

    from invertavatar.neural.parity.runner import FIXTURES, ParityRun

    torch.set_num_threads(max(1, args.threads))
    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {message}", file=sys.stderr, flush=True)

    names = list(FIXTURES) if args.fixture == "all" else [args.fixture]
    runner = ParityRun(args.fixture_dir, progress)
    rows = []
    for name in names:
        fixture_rows = runner.run(name)
        failed = sum(not r.ok for r in fixture_rows)
        progress(f"{name}: {len(fixture_rows) - failed}/{len(fixture_rows)} comparisons within tolerance "
                 f"({runner.timings[name]:.1f} s)")
        rows.extend(fixture_rows)
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    summary = {name: {"rows": sum(r.fixture == name for r in rows),
                      "failed": sum(r.fixture == name and not r.ok for r in rows),
                      "seconds": round(runner.timings[name], 1)} for name in names}
    print()
    for name, item in summary.items():
        state = "PASS" if not item["failed"] else f"FAIL ({item['failed']} rows)"
        print(f"{name}: {state}, {item['rows']} comparisons, {item['seconds']} s")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_table(rows, summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"fixture_dir": str(args.fixture_dir), "summary": summary,
                                         "rows": [r.to_dict() for r in rows]}, indent=1))
    return 1 if failed else 0
