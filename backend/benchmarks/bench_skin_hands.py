"""How much of each photo's skin mask the hands take out (issue 23, "only skin in the skin").

    python backend/benchmarks/bench_skin_hands.py [PHOTO_DIR] [--debug-dir DIR]

For every photo (default ../shared/devset/photos/human): the face is detected, the skin mask (texture/skin_mask.py)
is made with the hands MediaPipe's hand models find and without them, and the JSON row says how many hands were
found, their scores, and how many work-resolution skin-mask pixels (mask > 0.5) the hands removed, also as a share
of the mask. ``--debug-dir`` writes each photo's two masks side by side over the photo for a look (never into the
repository: the devset's pictures stay out of it). Writes docs/benchmarks/skin_hands.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"
DEFAULT = ROOT.parent / "shared" / "devset" / "photos" / "human"
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    small = cv2.resize(image, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
    tint = small * 0.35 + np.array([0, 255, 0], np.float32) * 0.65
    return np.where(mask[..., None] > 0.5, tint, small * 0.6).astype(np.uint8)


def measure(photo: Path, detector, hands, debug: Path | None) -> dict:
    from invertavatar.errors import InvertAvatarError
    from invertavatar.io.frames import open_source
    from invertavatar.texture.skin_mask import skin_mask

    image = np.ascontiguousarray(next(iter(open_source(photo))).image[..., :3])
    try:
        detection = detector.detect(image, photo.name)
    except InvertAvatarError as exc:
        return {"photo": photo.name, "error": exc.code}
    started = time.perf_counter()
    found = hands.detect(image)
    hand_seconds = time.perf_counter() - started
    without = skin_mask(image, detection, hands=None)
    with_hands = skin_mask(image, detection, hands=found)
    if without is None:
        return {"photo": photo.name, "error": "no_contours"}
    before = int((without.mask > 0.5).sum())
    after = int((with_hands.mask > 0.5).sum())
    row = {"photo": photo.name, "hands": len(found), "scores": [round(h.score, 3) for h in found],
           "hand_seconds": round(hand_seconds, 4), "skin_pixels_without_hands": before,
           "skin_pixels_with_hands": after, "removed_by_hands": before - after,
           "removed_share": round((before - after) / max(before, 1), 4)}
    if debug is not None:
        import cv2

        debug.mkdir(parents=True, exist_ok=True)
        pair = np.hstack([overlay(image, without.mask), overlay(image, with_hands.mask)])
        cv2.imwrite(str(debug / f"{photo.stem}_skin.png"), pair[..., ::-1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--debug-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT / "skin_hands.json")
    args = parser.parse_args()
    from invertavatar.detect.hands import HandDetector
    from invertavatar.detect.mediapipe_detector import MediaPipeDetector

    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in SUFFIXES)
    with MediaPipeDetector() as detector, HandDetector() as hands:
        rows = [measure(photo, detector, hands, args.debug_dir) for photo in photos]
    for row in rows:
        print(json.dumps(row))
    measured = [r for r in rows if "hands" in r]
    summary = {"photos": len(rows), "measured": len(measured),
               "photos_with_hands": sum(1 for r in measured if r["hands"]),
               "removed_pixels_total": sum(r["removed_by_hands"] for r in measured),
               "hand_seconds_median": float(np.median([r["hand_seconds"] for r in measured])) if measured else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"what": "skin-mask pixels (work resolution, mask > 0.5) removed by detected hands",
                                    "summary": summary, "rows": rows}, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
