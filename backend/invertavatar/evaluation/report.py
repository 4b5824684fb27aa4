"""The evaluation report: a versioned JSON document (schema in docs/evaluation.md) and its plots."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

SCHEMA = "invertavatar.eval"
SCHEMA_VERSION = 1
STATUSES = ("tracked", "no_face", "implausible", "other_person")
METRICS = ("psnr", "ssim", "lpips", "landmark_error_iod")


def events(records: list[dict]) -> list[dict]:
    """Runs of consecutive held-out frames with the same non-``tracked`` status (a face leaving, a cut, ...)."""
    runs: list[dict] = []
    previous = "tracked"
    for record in records:
        status = record["status"]
        if status != "tracked":
            if status == previous:
                runs[-1]["last_frame"], runs[-1]["count"] = record["index"], runs[-1]["count"] + 1
            else:
                runs.append({"status": status, "first_frame": record["index"], "last_frame": record["index"],
                             "count": 1})
        previous = status
    return runs


def summarise(records: list[dict]) -> dict:
    """Means and medians over tracked frames only, the count per status, and the events."""
    tracked = [r for r in records if r["status"] == "tracked"]
    summary: dict = {"heldout": len(records), "tracked": len(tracked),
                     "tracked_share": round(len(tracked) / max(len(records), 1), 4),
                     "status_counts": {s: sum(r["status"] == s for r in records) for s in STATUSES}}
    for name in METRICS:
        values = np.array([r[name] for r in tracked if name in r], dtype=np.float64)
        values = values[np.isfinite(values)]
        summary[name] = None if not len(values) else {
            "mean": round(float(values.mean()), 5), "median": round(float(np.median(values)), 5),
            "min": round(float(values.min()), 5), "max": round(float(values.max()), 5)}
    return {"summary": summary, "events": events(records)}


def machine() -> dict:
    """The machine a report was measured on."""
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "system": platform.system()}


def make_report(clip: dict, protocol: dict, runs: list[dict], lpips_reason: str, seconds: float) -> dict:
    """Assemble the report; ``warnings`` names every run whose frames were not all tracked, so nothing hides."""
    warnings = []
    for run in runs:
        if "error" in run:
            warnings.append(f"K={run['k']}: no avatar could be built ({run['error']['message']})")
            continue
        for event in run["events"]:
            warnings.append(f"K={run['k']}: held-out frames {event['first_frame']}-{event['last_frame']} "
                            f"({event['count']}) not scored: {event['status']}")
    from .. import __version__

    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "invertavatar": __version__, "clip": clip,
            "protocol": protocol,
            "lpips": {"available": not lpips_reason, "reason": lpips_reason or None},
            "runs": runs, "warnings": warnings, "seconds": round(seconds, 2), "machine": machine()}


def write_report(report: dict, strips: dict, out: Path, stem: str = "eval") -> list[Path]:
    """Write ``{stem}.json``, ``{stem}.png`` (metrics vs K) and ``{stem}_strip.png`` (real vs rendered) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    path.write_text(json.dumps(report, indent=1, allow_nan=False, default=_finite))
    written = [path, plot_metrics(report, out / f"{stem}.png")]
    if strips:
        written.append(plot_strip(strips, out / f"{stem}_strip.png"))
    return written


def _finite(value):
    raise TypeError(f"not JSON serialisable: {value!r}")


def plot_metrics(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if "summary" in r]
    ks = [r["k"] for r in runs]
    panels = [("psnr", "PSNR in face mask (dB)"), ("ssim", "SSIM in face mask"),
              ("landmark_error_iod", "landmark error / eye distance"), ("tracked_share", "held-out frames tracked")]
    if report["lpips"]["available"]:
        panels.insert(2, ("lpips", "LPIPS (AlexNet)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2))
    for ax, (key, label) in zip(axes, panels):
        if key == "tracked_share":
            ax.plot(ks, [r["summary"]["tracked_share"] for r in runs], "o-")
            ax.set_ylim(0, 1.05)
        else:
            stats = [r["summary"][key] for r in runs]
            means = [s["mean"] if s else np.nan for s in stats]
            low = [s["min"] if s else np.nan for s in stats]
            high = [s["max"] if s else np.nan for s in stats]
            ax.fill_between(ks, low, high, alpha=0.2, label="min-max")
            ax.plot(ks, means, "o-", label="mean")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("input frames K")
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{report['clip']['name']}: self-reenactment on held-out frames ({report['protocol']['mode']})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_strip(strips: dict, path: Path, height: int = 160) -> Path:
    """Top row the real held-out face crops, then one row of renders per K (largest K last)."""
    from PIL import Image, ImageDraw

    reals = {i: real for k in sorted(strips) for i, real, _ in strips[k]}
    columns = sorted(reals)
    if not columns:
        Image.new("RGB", (320, 40), "white").save(path)
        return path
    rows = [("real", reals)] + [(f"K={k}", {i: rendered for i, _, rendered in strips[k]}) for k in sorted(strips)]
    label_width = 56
    canvas = Image.new("RGB", (label_width + len(columns) * height, len(rows) * height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        draw.text((4, r * height + height // 2), label, fill="black")
        for c, index in enumerate(columns):
            if index not in images:  # not tracked with this avatar: left blank rather than hidden
                continue
            tile = Image.fromarray(images[index]).resize((height, height))
            canvas.paste(tile, (label_width + c * height, r * height))
            if r == 0:
                draw.text((label_width + c * height + 4, 4), f"frame {index}", fill="white")
    canvas.save(path)
    return path
