"""Contact sheet: every photo under a folder reconstructed and shown the way an artist first looks at an avatar.

    python backend/benchmarks/contact_sheet.py PHOTO_DIR OUT.png [--limit N] [--atlas-dir DIR] [--size 192]

One row per photo: input | front | 45° | 90° | back | smile + blink (backend preview renderer, headlight shading).
A photo that fails shows its error message in the row instead. ``--atlas-dir`` also writes each avatar's albedo
atlas (and, when present, the as-photographed atlas) there, and a JSON file next to OUT.png gives per-photo timings.
Devset pictures made with this script are for looking at, never for the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
COLUMNS = ("input", "front", "45°", "90°", "back", "smile + blink")
LABEL_HEIGHT = 18


def find_photos(folder: Path, limit: int | None) -> list[Path]:
    photos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    return photos[:limit] if limit else photos


def _yaw_quaternion(degrees: float) -> np.ndarray:
    half = math.radians(degrees) / 2
    return np.array([math.cos(half), 0.0, math.sin(half), 0.0])


def render_views(bundle, size: int) -> list[np.ndarray]:
    """Front, 45°, 90°, back and smile + blink renders of a bundle (the head turns, the camera stays)."""
    import torch

    from invertavatar.headmodel import ARKIT_NAMES
    from invertavatar.render import Camera
    from invertavatar.render.avatar import render_avatar

    vertices = np.asarray(bundle.mesh["vertices"])
    centre = 0.5 * (vertices.min(0) + vertices.max(0))
    extent = float((vertices.max(0) - vertices.min(0))[1])
    distance = 1.0
    focal = size * distance / (1.15 * extent)
    camera = Camera.look_at(torch.tensor([centre[0], centre[1], centre[2] + distance]),
                            torch.tensor(centre, dtype=torch.float32), focal, size, size)
    neutral = np.zeros(len(bundle.mesh["expression_names"]))
    expression = neutral.copy()
    names = [str(n) for n in bundle.mesh["expression_names"]]
    for name in ("mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight"):
        expression[names.index(name)] = 1.0
    assert names == list(ARKIT_NAMES)
    views = []
    for yaw, weights in ((0, neutral), (45, neutral), (90, neutral), (180, neutral), (0, expression)):
        views.append(render_avatar(bundle, weights, _yaw_quaternion(yaw), np.zeros(3), camera,
                                   background=(200, 200, 200)))
    return views


def _fit(image: Image.Image, size: int) -> np.ndarray:
    image = image.convert("RGB")
    image.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return np.asarray(canvas)


def _message_tile(text: str, width: int, height: int) -> np.ndarray:
    tile = Image.new("RGB", (width, height), (250, 225, 225))
    draw = ImageDraw.Draw(tile)
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) > width // 7:
            lines.append(line)
            line = ""
        line += word + " "
    lines.append(line)
    draw.multiline_text((6, 6), "\n".join(lines[:12]), fill=(120, 0, 0))
    return np.asarray(tile)


def reconstruct(photo: Path, folder: Path) -> tuple[object, float, float]:
    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job

    started, cpu = time.perf_counter(), time.process_time()
    result = run_job(JobSpec([photo], folder / f"{photo.stem}.avatar", overwrite=True))
    elapsed = time.perf_counter() - started
    # CPU seconds too: on a shared machine the wall time mostly measures the other processes.
    return read_bundle(result.bundle), elapsed, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="at most this many photos (sorted by name)")
    parser.add_argument("--only", nargs="*", default=None, help="only photos whose file name contains one of these")
    parser.add_argument("--size", type=int, default=192, help="tile size in pixels")
    parser.add_argument("--atlas-dir", type=Path, default=None, help="also save every albedo atlas here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from invertavatar.errors import InvertAvatarError

    torch.set_num_threads(1)
    photos = find_photos(args.photo_dir, None if args.only else args.limit)
    if args.only:
        photos = [p for p in photos if any(key in p.name for key in args.only)][: args.limit or None]
    if not photos:
        raise SystemExit(f"no photos under {args.photo_dir}")
    size = args.size
    rows, report = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in photos:
            entry: dict = {"photo": photo.name}
            try:
                with Image.open(photo) as img:
                    tiles = [_fit(img, size)]
                bundle, elapsed, cpu = reconstruct(photo, Path(tmp))
                entry["seconds"] = round(elapsed, 2)
                entry["cpu_seconds"] = round(cpu, 2)
                tiles += render_views(bundle, size)
                if args.atlas_dir:
                    args.atlas_dir.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(bundle.albedo).resize((1024, 1024)).save(args.atlas_dir / f"{photo.stem}.png")
                    photographed = getattr(bundle, "photographed", None)
                    if photographed is not None:
                        Image.fromarray(photographed).resize((1024, 1024)).save(
                            args.atlas_dir / f"{photo.stem}_photographed.png")
                row = np.concatenate(tiles, 1)
            except InvertAvatarError as exc:
                entry["error"] = f"{exc.code}: {exc}"
                row = np.concatenate([tiles[0] if tiles else np.full((size, size, 3), 255, np.uint8),
                                      _message_tile(f"{exc.code}: {exc}", size * 5, size)], 1)
            except Exception as exc:  # the sheet must show every photo, even one that crashes the pipeline
                entry["error"] = f"{type(exc).__name__}: {exc}"
                row = np.concatenate([np.full((size, size, 3), 255, np.uint8),
                                      _message_tile(entry["error"], size * 5, size)], 1)
            print(json.dumps(entry), flush=True)
            report.append(entry)
            label = Image.new("RGB", (row.shape[1], LABEL_HEIGHT), (255, 255, 255))
            timing = f"{entry['seconds']} s wall, {entry['cpu_seconds']} s CPU" if "seconds" in entry else ""
            ImageDraw.Draw(label).text((4, 3), f"{photo.name}  {timing}", fill=(0, 0, 0))
            rows.append(np.concatenate([np.asarray(label), row], 0))
    header = Image.new("RGB", (size * len(COLUMNS), LABEL_HEIGHT), (235, 235, 235))
    draw = ImageDraw.Draw(header)
    for i, title in enumerate(COLUMNS):
        draw.text((i * size + 4, 3), title, fill=(0, 0, 0))
    sheet = np.concatenate([np.asarray(header)] + rows, 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out} ({len(rows)} photos)")


if __name__ == "__main__":
    main()
