"""Figures for docs/how-it-works.md: input, landmarks, fitted mesh overlay, albedo and coverage of a sample photo.

    python backend/benchmarks/figures_pipeline.py [--sample astronaut|grace_hopper]

Writes docs/figures/<sample>_{input,landmarks,fit,albedo,coverage}.png (small JPEG-like sizes for the docs).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "figures"


def crop_box(box: np.ndarray, shape: tuple[int, int], margin: float = 0.6) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    pad = margin * max(x1 - x0, y1 - y0)
    return (int(max(x0 - pad, 0)), int(max(y0 - pad, 0)), int(min(x1 + pad, shape[1])), int(min(y1 + pad, shape[0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="astronaut", choices=("astronaut", "grace_hopper"))
    args = parser.parse_args()
    from invertavatar.cli.reconstruct_cmd import sample_photo
    from invertavatar.detect import make_detector
    from invertavatar.headmodel import load_head_model
    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job
    from invertavatar.render import Camera, interpolate, rasterize, vertex_normals
    from invertavatar.track import Tracker

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        photo = sample_photo(args.sample, Path(tmp))
        image = np.asarray(Image.open(photo).convert("RGB"))
        bundle = read_bundle(run_job(JobSpec([photo], Path(tmp) / "a.avatar")).bundle)
    model = load_head_model()
    with make_detector("mediapipe") as detector:
        detection = detector.detect(image, photo.name)
    tracker = Tracker(model)
    fit = tracker.add_frame(detection, image.shape[:2])
    box = crop_box(detection.box, image.shape)

    Image.fromarray(image).crop(box).save(OUT / f"{args.sample}_input.png")
    marked = Image.fromarray(image.copy())
    draw = ImageDraw.Draw(marked)
    for x, y in detection.landmarks[:468]:
        draw.point((float(x), float(y)), fill=(255, 40, 40))
    marked.crop(box).resize((2 * (box[2] - box[0]), 2 * (box[3] - box[1])), Image.NEAREST).save(
        OUT / f"{args.sample}_landmarks.png")

    k, r, t = fit.camera_tensors()
    camera = Camera(k, r, t, image.shape[1], image.shape[0])
    vertices = model.evaluate(torch.from_numpy(tracker.identity).float()[None],
                              torch.from_numpy(fit.expression).float()[None])
    fragments = rasterize(camera.project(vertices), model.triangles, image.shape[0], image.shape[1],
                          cull_backfaces=True)
    normals = interpolate(vertex_normals(camera.world_to_camera(vertices), model.triangles), fragments,
                          model.triangles)[0]
    shade = (-torch.nn.functional.normalize(normals, dim=-1)[..., 2]).clamp(0, 1).numpy()
    mask = fragments.mask[0].numpy()
    overlay = image.astype(np.float32)
    overlay[mask] = 0.45 * overlay[mask] + 0.55 * (shade[mask, None] * np.array([235, 235, 255]))
    Image.fromarray(overlay.astype(np.uint8)).crop(box).save(OUT / f"{args.sample}_fit.png")
    Image.fromarray(bundle.albedo).resize((1024, 1024), Image.LANCZOS).save(OUT / f"{args.sample}_albedo.png")
    Image.fromarray(bundle.coverage).resize((1024, 1024), Image.LANCZOS).save(OUT / f"{args.sample}_coverage.png")
    print(f"wrote figures to {OUT}; landmark error {fit.landmark_error_iod:.1%} of the eye distance")


if __name__ == "__main__":
    main()
