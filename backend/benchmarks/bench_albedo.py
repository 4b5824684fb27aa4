"""Is every avatar's skin at a level skin can have? The face's mean linear albedo per photo (issue 23).

    python backend/benchmarks/bench_albedo.py [PHOTO_DIR]    # default ../shared/devset/photos/human

Every photo is reconstructed by the ordinary pipeline, one at a time. For each, the bundle's inner face (the head
model's `narrow_face` texels the photo saw well) gives a mean linear-sRGB albedo per channel, compared with the
skin range of texture/albedo_level.py (docs/how-it-works.md, *Albedo level*, cites where it comes from); the
manifest's `albedo_level` gives the level as fused (the photo's exposure) and the evidence used.

Then the closed loop: the avatar is rendered through the photo's own fit by the evaluation's renderer
(evaluation/heldout.py, re-lit with the light fitted to the photo's face) and compared with the photo in CIEDE2000:

- ``face_delta_e00``: inside the face mask, per pixel (``mean``, ``median``) and between the two mean colours
  (``of_means``: the tone alone, blind to misaligned detail);
- ``iris_delta_e00``: between the mean colours of the iris pixels (pipeline/iris.py's polar samples where the lids
  leave the iris open and no catch light is), the photo's at its landmarks, the render's at the landmarks MediaPipe
  finds in the render (the photo's when it finds none).

Writes docs/benchmarks/albedo.json and albedo.png (numbers and bars only: the devset's pictures stay out of the
repository).
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


def iris_mean(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """Mean sRGB (0..1) of both irises' valid polar samples (pipeline/iris.py), or None when no eye shows its iris."""
    from invertavatar.detect.landmark_schemes import LEFT_EYE_CONTOUR, LEFT_IRIS, RIGHT_EYE_CONTOUR, RIGHT_IRIS
    from invertavatar.pipeline.iris import iris_polar

    if len(landmarks) < 478:
        return None
    samples = []
    for iris, contour in ((LEFT_IRIS, LEFT_EYE_CONTOUR), (RIGHT_IRIS, RIGHT_EYE_CONTOUR)):
        centre, ring = landmarks[iris[0]], landmarks[iris[1:]]
        radius = float(np.linalg.norm(ring - centre, axis=1).mean())
        if radius < 2.0:
            continue
        polar, valid = iris_polar(image, landmarks[contour], centre, radius, mirror=iris is LEFT_IRIS)
        samples.append(polar[valid])
    samples = np.concatenate(samples) if samples else np.zeros((0, 3))
    return samples.mean(0) if len(samples) >= 8 else None


def closed_loop(photo: Path, bundle, model, detector) -> dict:
    """CIEDE2000 between the photo and the avatar rendered through the photo's own fit, re-lit with its light."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    from invertavatar.errors import InvertAvatarError
    from invertavatar.evaluation.heldout import AvatarRenderer
    from invertavatar.evaluation.metrics import face_mask
    from invertavatar.io.frames import open_source
    from invertavatar.track import Tracker

    source = open_source(photo)
    image = next(iter(source)).image[..., :3]
    source.close()
    renderer = AvatarRenderer(model, bundle)
    detection = detector.detect(image, photo.name)
    fit = Tracker(model, state=renderer.state).add_frame(detection, image.shape[:2], keyframe=False)
    region = face_mask(detection.landmarks, image.shape[:2])
    rendered = renderer.render(fit, image, region)
    lab_photo, lab_render = rgb2lab(image[region] / 255.0), rgb2lab(rendered[region] / 255.0)
    per_pixel = deltaE_ciede2000(lab_photo, lab_render)
    row = {"face_delta_e00": {"mean": round(float(per_pixel.mean()), 3),
                              "median": round(float(np.median(per_pixel)), 3),
                              "of_means": round(float(deltaE_ciede2000(lab_photo.mean(0), lab_render.mean(0))), 3)}}
    photo_iris = iris_mean(image, detection.landmarks)
    try:
        seen, row["iris_landmarks"] = detector.detect(rendered, f"render of {photo.name}").landmarks, "render"
    except InvertAvatarError:
        seen, row["iris_landmarks"] = detection.landmarks, "photo"
    render_iris = iris_mean(rendered, seen)
    if photo_iris is not None and render_iris is not None:
        to_lab = lambda c: rgb2lab(c.reshape(1, 1, 3))[0, 0]  # noqa: E731
        row["iris_delta_e00"] = round(float(deltaE_ciede2000(to_lab(photo_iris), to_lab(render_iris))), 3)
        row["iris_srgb"] = {"photo": photo_iris.round(4).tolist(), "render": render_iris.round(4).tolist()}
    return row


def measure(photo: Path, folder: Path, model, detector) -> dict:
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
    try:
        row.update(closed_loop(photo, bundle, model, detector))
    except InvertAvatarError as exc:
        row["closed_loop_error"] = exc.code
    return row


def plot(rows: list[dict], low: np.ndarray, high: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if "face_mean_linear" in r]
    fig, axes = plt.subplots(5, 1, figsize=(12, 12), sharex=True)
    x = np.arange(len(rows))
    for c, (ax, name, colour) in enumerate(zip(axes, "RGB", ("tab:red", "tab:green", "tab:blue"))):
        ax.axhspan(low[c], high[c], color="0.9", label="skin range")
        fused = [r["level"].get("face_mean_linear_fused", [np.nan] * 3)[c] for r in rows]
        ax.bar(x - 0.2, fused, 0.4, color="0.6", label="as fused (the photo's exposure)")
        ax.bar(x + 0.2, [r["face_mean_linear"][c] for r in rows], 0.4, color=colour, label="bundle")
        ax.set_ylabel(f"{name} (linear)")
        ax.set_ylim(0, 1)
    axes[0].legend(loc="upper right", fontsize=8)
    face = axes[3]
    face.bar(x - 0.2, [r.get("face_delta_e00", {}).get("median", np.nan) for r in rows], 0.4, color="tab:orange",
             label="per pixel, median")
    face.bar(x + 0.2, [r.get("face_delta_e00", {}).get("of_means", np.nan) for r in rows], 0.4, color="tab:brown",
             label="of the mean colours")
    face.set_ylabel("face ΔE00")
    face.legend(loc="upper right", fontsize=8)
    axes[4].bar(x, [r.get("iris_delta_e00", np.nan) for r in rows], 0.6, color="tab:purple")
    axes[4].set_ylabel("iris ΔE00")
    axes[-1].set_xticks(x, [r["photo"].rsplit(".", 1)[0][:22] for r in rows], rotation=70, fontsize=7)
    fig.suptitle("Inner-face mean albedo per devset photo against the skin range; the photo against its re-lit "
                 "render (CIEDE2000)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    values = np.array(values)
    return {"count": int(len(values)), "mean": round(float(values.mean()), 3),
            "median": round(float(np.median(values)), 3), "max": round(float(values.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="*", default=None, help="measure only these photo names (no files written)")
    args = parser.parse_args()
    from invertavatar.detect import make_detector
    from invertavatar.headmodel import load_head_model
    from invertavatar.texture.albedo_level import skin_range

    model = load_head_model()
    low, high, (y_low, y_high) = skin_range()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.only is not None:
        photos = [p for p in photos if p.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, make_detector("mediapipe") as detector:
        for photo in photos:
            row = measure(photo, Path(tmp), model, detector)
            inside = None
            if "face_mean_linear" in row:
                face = np.array(row["face_mean_linear"])
                inside = bool((face >= low - 1e-4).all() and (face <= high + 1e-4).all())
                row["inside_range"] = inside
            rows.append(row)
            print(f"{photo.name:45s} {row.get('fused_luminance', '-')!s:>8} → {row.get('face_luminance', '-')!s:>8}"
                  f"  {row.get('face_mean_linear', row.get('error'))}  inside={inside}"
                  f"  face ΔE00 {row.get('face_delta_e00')}  iris ΔE00 {row.get('iris_delta_e00')}", flush=True)
    measured = [r for r in rows if "inside_range" in r]
    summary = {
        "photos": len(rows), "measured": len(measured),
        "inside_range": sum(r["inside_range"] for r in measured),
        "skin_range_linear": {"low": low.round(4).tolist(), "high": high.round(4).tolist(),
                              "luminance": [round(y_low, 4), round(y_high, 4)]},
        "fused_above_range": sum(r.get("fused_luminance", 0) > y_high for r in measured),
        "fused_below_range": sum(r.get("fused_luminance", 1) < y_low for r in measured),
        "seconds_median": float(np.median([r["seconds"] for r in measured])) if measured else None,
        "face_delta_e00_median_per_pixel": _stats([r["face_delta_e00"]["median"] for r in rows
                                                   if "face_delta_e00" in r]),
        "face_delta_e00_of_means": _stats([r["face_delta_e00"]["of_means"] for r in rows if "face_delta_e00" in r]),
        "iris_delta_e00": _stats([r["iris_delta_e00"] for r in rows if "iris_delta_e00" in r]),
    }
    if args.only is not None:
        print(json.dumps({"summary": summary, "photos": rows}, indent=1))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "albedo.json").write_text(json.dumps({"summary": summary, "photos": rows}, indent=1))
    plot(rows, low, high, args.out / "albedo.png")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
