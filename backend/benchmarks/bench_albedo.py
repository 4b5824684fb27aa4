"""Is every avatar's skin at a level skin can have? The face's mean linear albedo per photo (issue 23).

    python backend/benchmarks/bench_albedo.py [PHOTO_DIR]    # default ../shared/devset/photos/human

Every photo is reconstructed by the ordinary pipeline, one at a time. For each, the bundle's inner face (the head
model's `narrow_face` texels the photo saw well) gives a mean linear-sRGB albedo per channel, compared with the
skin range of texture/albedo_level.py (docs/how-it-works.md, *Albedo level*, cites where it comes from); the
manifest's `albedo_level` gives the level as fused (the photo's exposure) and the evidence used. Writes
docs/benchmarks/albedo.json and albedo.png (numbers and bars only: the devset's pictures stay out of the repository).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"
DEFAULT = ROOT.parent / "shared" / "devset" / "photos" / "human"


def measure(photo: Path, folder: Path, model) -> dict:
    from invertavatar.errors import InvertAvatarError
    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job
    from invertavatar.texture.albedo_level import LUMINANCE, atlas_face_mean

    started = time.perf_counter()
    try:
        result = run_job(JobSpec([photo], folder / f"{photo.stem}.avatar", overwrite=True))
    except InvertAvatarError as exc:
        return {"photo": photo.name, "error": exc.code}
    seconds = time.perf_counter() - started
    bundle = read_bundle(result.bundle)
    face = atlas_face_mean(bundle.albedo, bundle.coverage, model)
    level = bundle.manifest.get("albedo_level") or {}
    row = {"photo": photo.name, "seconds": round(seconds, 2), "level": level}
    if face is not None:
        row["face_mean_linear"] = [round(float(c), 4) for c in face]
        row["face_luminance"] = round(float(face @ LUMINANCE), 4)
    if level.get("face_mean_linear_fused"):
        fused = np.array(level["face_mean_linear_fused"])
        row["fused_luminance"] = round(float(fused @ LUMINANCE), 4)
    return row


def plot(rows: list[dict], low: np.ndarray, high: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "face_mean_linear" in r]
    fig, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    x = np.arange(len(rows))
    for c, (ax, name, colour) in enumerate(zip(axes, "RGB", ("tab:red", "tab:green", "tab:blue"))):
        ax.axhspan(low[c], high[c], color="0.9", label="skin range")
        fused = [r["level"].get("face_mean_linear_fused", [np.nan] * 3)[c] for r in rows]
        ax.bar(x - 0.2, fused, 0.4, color="0.6", label="as fused (the photo's exposure)")
        ax.bar(x + 0.2, [r["face_mean_linear"][c] for r in rows], 0.4, color=colour, label="bundle")
        ax.set_ylabel(f"{name} (linear)")
        ax.set_ylim(0, 1)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xticks(x, [r["photo"].rsplit(".", 1)[0][:22] for r in rows], rotation=70, fontsize=7)
    fig.suptitle("Inner-face mean albedo per devset photo, against the skin range")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from invertavatar.headmodel import load_head_model
    from invertavatar.texture.albedo_level import skin_range

    model = load_head_model()
    low, high, (y_low, y_high) = skin_range()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in photos:
            row = measure(photo, Path(tmp), model)
            inside = None
            if "face_mean_linear" in row:
                face = np.array(row["face_mean_linear"])
                inside = bool((face >= low - 1e-4).all() and (face <= high + 1e-4).all())
                row["inside_range"] = inside
            rows.append(row)
            print(f"{photo.name:45s} {row.get('fused_luminance', '-')!s:>8} → {row.get('face_luminance', '-')!s:>8}"
                  f"  {row.get('face_mean_linear', row.get('error'))}  inside={inside}", flush=True)
    measured = [r for r in rows if "inside_range" in r]
    summary = {
        "photos": len(rows), "measured": len(measured),
        "inside_range": sum(r["inside_range"] for r in measured),
        "skin_range_linear": {"low": low.round(4).tolist(), "high": high.round(4).tolist(),
                              "luminance": [round(y_low, 4), round(y_high, 4)]},
        "fused_above_range": sum(r.get("fused_luminance", 0) > y_high for r in measured),
        "fused_below_range": sum(r.get("fused_luminance", 1) < y_low for r in measured),
        "seconds_median": float(np.median([r["seconds"] for r in measured])) if measured else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "albedo.json").write_text(json.dumps({"summary": summary, "photos": rows}, indent=1))
    plot(rows, low, high, args.out / "albedo.png")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
