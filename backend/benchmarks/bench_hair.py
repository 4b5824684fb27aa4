"""Does the avatar's hair have the person's silhouette and colour? Measured through each keyframe's own camera.

    python backend/benchmarks/bench_hair.py [DEVSET] [--photos N] [--clips N]   # default ../shared/devset

Every photo (``photos/human``) and clip (``clips``) is reconstructed by the ordinary pipeline. Then, for each
keyframe (a photo; a clip's keyframes, up to ``MAX_CLIP_KEYFRAMES``), the frame is detected again and fitted with
the avatar's own identity, and the avatar is drawn by the preview renderer (render/avatar.py, with and without its
hair) through that fit's camera:

- **silhouette IoU**: head plus hair of the render against the photo's person-head region (the segmenter's person
  mask inside the hair stage's head zone), both above the chin line (below it the render's neck and the person's
  clothes are not comparable); also the IoU of the hair alone (scalp and beard) against the photo's hair and beard
  masks;
- **hair colour ΔE00**: CIEDE2000 between the median colour of the render's hair pixels and of the photo's hair
  pixels (the render is lit by the preview's own light, not the photo's: the difference includes that);
- **seconds** of the hair step (the job's ``timings_s.hair``) and of the whole job.

Writes docs/benchmarks/hair.json and hair.png (numbers and a plot only: the devset's pictures stay out of the
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
MAX_CLIP_KEYFRAMES = 4


def _masks_of_render(bundle, camera, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head ∪ hair, hair alone) silhouettes (H, W) bool and the render with hair, through ``camera``."""
    from invertavatar.render.hair import hair_masks

    return hair_masks(bundle, camera)


def _iou(a: np.ndarray, b: np.ndarray) -> float | None:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else None


def _median_lab(pixels: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.median(pixels, axis=0).reshape(1, 1, 3))[0, 0]


def measure_view(image: np.ndarray, bundle, model, detector, segmenter, label: str) -> dict:
    """One keyframe: IoUs and colour difference of the avatar through this frame's own fit."""
    import cv2
    from skimage.color import deltaE_ciede2000

    from invertavatar.hair.region import hair_region
    from invertavatar.render import Camera
    from invertavatar.texture.skin_mask import skin_mask
    from invertavatar.track import Tracker, TrackerState

    detection = detector.detect(image, label)
    fit = Tracker(model, state=TrackerState.from_bytes(bundle.state["tracker.json"])).add_frame(
        detection, image.shape[:2], keyframe=False)
    k, r, t = fit.camera_tensors()
    camera = Camera(k, r, t, image.shape[1], image.shape[0])
    region = hair_region(image, detection, skin_mask(image, detection), segmenter.segment(image))
    h, w = region.hair.shape
    silhouette, hair, render = _masks_of_render(bundle, camera, image.shape[:2])
    small = lambda m: cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0  # noqa: E731
    rows = np.arange(h)[:, None]
    above_chin = rows < region.chin_row[None, :]
    photo_head = (region.person > 0.5) & region.zone & above_chin
    render_head = small(silhouette) & region.zone & above_chin
    record = {"view": label, "silhouette_iou": _iou(photo_head, render_head),
              "hair_iou": _iou(region.hair | region.beard, small(hair)), "bald": region.bald}
    if region.hair.sum() > 50 and hair.sum() > 50:  # the scalp hair's colour (a beard may differ)
        photo_pixels = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)[region.hair] / 255.0
        render_pixels = render[hair] / 255.0
        record["hair_delta_e00"] = float(deltaE_ciede2000(_median_lab(photo_pixels), _median_lab(render_pixels)))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()}


def reconstruct(path: Path, folder: Path) -> tuple[object, dict, float]:
    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job

    started = time.perf_counter()
    result = run_job(JobSpec([path], folder / f"{path.stem}.avatar"))
    return read_bundle(result.bundle), result.manifest, time.perf_counter() - started


def keyframe_images(path: Path, indices: list[int]):
    """The clip's frames at ``indices``, decoded as a stream (one frame held at a time)."""
    from invertavatar.io.frames import open_source

    wanted = set(indices)
    source = open_source(path)
    try:
        for frame in source:
            if frame.index in wanted:
                yield frame.index, frame.image
                wanted.discard(frame.index)
                if not wanted:
                    break
    finally:
        source.close()


def measure(path: Path, folder: Path, model, detector, segmenter) -> dict:
    from invertavatar.errors import InvertAvatarError
    from invertavatar.io.frames import open_source

    record: dict = {"input": path.name, "kind": "clip" if path.suffix.lower() in (".mp4", ".mov", ".mkv") else "photo"}
    try:
        bundle, manifest, seconds = reconstruct(path, folder)
        record.update(job_seconds=round(seconds, 2), hair_seconds=manifest["timings_s"].get("hair"),
                      hair=manifest.get("hair"))
        if record["kind"] == "clip":
            chosen = (manifest.get("keyframes") or [])[:MAX_CLIP_KEYFRAMES]
            images = list(keyframe_images(path, chosen))
        else:
            source = open_source(path)
            images = [(0, next(iter(source)).image)]
            source.close()
        views = []
        for index, image in images:
            try:
                views.append(measure_view(image, bundle, model, detector, segmenter, f"{path.name}#{index}"))
            except InvertAvatarError as exc:
                views.append({"view": f"{path.name}#{index}", "error": exc.code})
        record["views"] = views
    except InvertAvatarError as exc:
        record["error"] = exc.code
    return record


def _summary(records: list[dict]) -> dict:
    views = [v for r in records for v in r.get("views", []) if "error" not in v]

    def stats(key: str) -> dict:
        values = np.array([v[key] for v in views if v.get(key) is not None], float)
        if not len(values):
            return {}
        return {"n": int(len(values)), "mean": round(float(values.mean()), 4),
                "median": round(float(np.median(values)), 4), "min": round(float(values.min()), 4)}

    seconds = [r["hair_seconds"] for r in records if r.get("hair_seconds") is not None]
    return {"inputs": len(records), "failed": sum("error" in r for r in records),
            "with_hair": sum(bool((r.get("hair") or {}).get("found")) for r in records),
            "silhouette_iou": stats("silhouette_iou"), "hair_iou": stats("hair_iou"),
            "hair_delta_e00": stats("hair_delta_e00"),
            "hair_seconds": {"mean": round(float(np.mean(seconds)), 3), "max": round(float(np.max(seconds)), 3)}
            if seconds else {}}


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(r["input"], v) for r in records for v in r.get("views", []) if "error" not in v]
    fig, axes = plt.subplots(1, 3, figsize=(15, max(4, 0.22 * len(rows))), sharey=True)
    names = [f"{name[:28]} {v['view'].split('#')[-1]}" for name, v in rows]
    y = np.arange(len(rows))
    for axis, key, title in ((axes[0], "silhouette_iou", "head + hair silhouette IoU"),
                             (axes[1], "hair_iou", "hair IoU"), (axes[2], "hair_delta_e00", "hair colour ΔE00")):
        axis.barh(y, [v.get(key) or 0 for _, v in rows], color="#7a5230")
        axis.set_title(title)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("devset", type=Path, nargs="?", default=ROOT.parent / "shared" / "devset")
    parser.add_argument("--photos", type=int, default=None, help="at most this many photos")
    parser.add_argument("--clips", type=int, default=None, help="at most this many clips")
    args = parser.parse_args()
    photos = sorted(p for p in (args.devset / "photos" / "human").glob("*") if p.suffix.lower() in (".jpg", ".png"))
    clips = sorted((args.devset / "clips").glob("*.mp4"))
    if not photos and not clips:
        parser.error(f"no photos/human or clips under {args.devset}")
    inputs = photos[:args.photos] + clips[:args.clips]
    from invertavatar.detect import make_detector
    from invertavatar.detect.person_mask import PersonSegmenter
    from invertavatar.headmodel import load_head_model

    started = time.perf_counter()
    model = load_head_model()
    with tempfile.TemporaryDirectory() as tmp, make_detector("mediapipe") as detector, PersonSegmenter() as segmenter:
        records = []
        for path in inputs:
            records.append(measure(path, Path(tmp), model, detector, segmenter))
            print(json.dumps({k: records[-1].get(k) for k in ("input", "job_seconds", "hair_seconds")}
                             | {"views": records[-1].get("views"), "error": records[-1].get("error")}), flush=True)
    import os

    report = {"benchmark": "bench_hair.py", "summary": _summary(records), "records": records,
              "seconds": round(time.perf_counter() - started, 1),
              "machine": {"cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hair.json").write_text(json.dumps(report, indent=2))
    plot(records, OUT / "hair.png")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
