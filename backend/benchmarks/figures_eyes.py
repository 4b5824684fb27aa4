"""Close-ups of the eyes: each photo beside its avatar rendered through the photo's own fit (issue 14).

    python backend/benchmarks/figures_eyes.py OUT.png [PHOTO ...]    # default: the two public-domain samples

Each row is the photo's eye region | the avatar's, drawn by the evaluation's renderer (re-lit with the photo's light)
from the same camera, so lids, iris size and iris place can be compared directly. Devset photos are for looking
only: keep their sheets out of the repository (docs/figures holds the samples' sheet).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROW_WIDTH, ROW_HEIGHT = 480, 216
#: Eye corners and mid-lid points of both eyes (MediaPipe indices): the crop is centred on them.
EYE_POINTS = [33, 133, 263, 362, 159, 145, 386, 374]


def eye_rows(photo: Path, folder: Path, detector) -> Image.Image:
    """One row: the photo's eyes | the avatar's (or the error's message when the photo fails)."""
    from PIL import ImageDraw

    from bench_lids import closed_loop
    from invertavatar.errors import InvertAvatarError

    row = Image.new("RGB", (2 * ROW_WIDTH, ROW_HEIGHT), (255, 255, 255))
    try:
        image, detection, rendered = closed_loop(photo, folder, detector)
    except InvertAvatarError as exc:
        ImageDraw.Draw(row).text((8, 8), f"{photo.name}: {exc}", fill=(160, 0, 0))
        return row
    points = detection.landmarks[EYE_POINTS]
    centre = (points.min(0) + points.max(0)) / 2
    half = 0.65 * float(np.ptp(points[:, 0]))
    box = tuple(int(v) for v in (centre[0] - half, centre[1] - 0.45 * half, centre[0] + half,
                                 centre[1] + 0.45 * half))
    for i, picture in enumerate((image, rendered)):
        row.paste(Image.fromarray(picture).crop(box).resize((ROW_WIDTH, ROW_HEIGHT)), (i * ROW_WIDTH, 0))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("photos", type=Path, nargs="*", help="photos (default: the astronaut and Grace Hopper)")
    args = parser.parse_args()
    from invertavatar.cli.reconstruct_cmd import SAMPLES, sample_photo
    from invertavatar.detect import make_detector

    with tempfile.TemporaryDirectory() as tmp, make_detector("mediapipe") as detector:
        photos = list(args.photos) or [sample_photo(name, Path(tmp)) for name in SAMPLES]
        rows = [eye_rows(photo, Path(tmp), detector) for photo in photos]
    sheet = Image.new("RGB", (2 * ROW_WIDTH, ROW_HEIGHT * len(rows)))
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * ROW_HEIGHT))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({len(rows)} photos)")


if __name__ == "__main__":
    main()
