"""Calibration of the human-face check (invertavatar.detect.human_check) on the devset and on synthetic renders.

For every devset photo (human, multi, animal, art) the job's outcome is recorded — refused ``no_face`` (the face
landmarker finds nothing), refused ``not_a_human_face``, accepted, or accepted with the artwork warning — with the
numbers behind it (Haar votes, flat-colour share, saturation, MediaPipe's face score). Clip frames (every 15th frame
of each devset clip) and renders of the ICT head model (textured with the astronaut photo's texture, untextured
skin-coloured, untextured grey; three yaws, shaded and flat-lit) are added, and an augmented set: every animal photo
cut into crops and mirrored (the crops in which MediaPipe finds a "face" are the hard negatives), every human photo
mirrored and rolled by ±25°. Writes docs/benchmarks/human_check.json (confusion table, per-image rows, margins,
false-accept and false-reject rates at the chosen thresholds) and docs/benchmarks/human_check.png (votes per group,
and votes against MediaPipe's score with the rule's boundary). No devset picture is written anywhere.

    PYTHONPATH=backend INVERTAVATAR_ASSETS=../shared/assets python backend/benchmarks/bench_human_check.py \
        [--devset ../shared/devset] [--no-augment] [--plot-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"
CLASSES = ("human", "multi", "animal", "art")
CLIP_STEP = 15


def outcome_of(detector, check, image: np.ndarray, source: str) -> tuple[str, dict]:
    """(outcome, cues) of one picture, as a job would see it (`FaceGate` without accept_any_face)."""
    from invertavatar.detect.human_check import ARTWORK, NOT_HUMAN
    from invertavatar.errors import InvertAvatarError

    try:
        detection = detector.detect(image, source)
    except InvertAvatarError as exc:
        return f"refused:{exc.code}", {}
    started = time.perf_counter()
    verdict = check.check(image, detection, full=True)
    full_ms = (time.perf_counter() - started) * 1000.0
    started = time.perf_counter()
    check.check(image, detection)  # as a job runs it: the counting stops once the cascades are sure
    cues = dict(verdict.cues, check_ms_full=round(full_ms, 2),
                check_ms=round((time.perf_counter() - started) * 1000.0, 2))
    if verdict.kind == NOT_HUMAN:
        return "refused:not_a_human_face", cues
    return ("accepted:artwork_warning" if verdict.kind == ARTWORK else "accepted"), cues


def devset_rows(detector, check, devset: Path) -> list[dict]:
    from invertavatar.io.frames import open_source

    rows = []
    for label in CLASSES:
        for path in sorted((devset / "photos" / label).iterdir()):
            source = open_source(path)
            image = next(iter(source)).image
            source.close()
            outcome, cues = outcome_of(detector, check, image, path.name)
            rows.append({"set": "devset", "label": label, "name": path.name, "outcome": outcome, **cues})
    for path in sorted((devset / "clips").glob("*.mp4")):
        source = open_source(path)
        for frame in source:
            if frame.index % CLIP_STEP == 0:
                outcome, cues = outcome_of(detector, check, frame.image, f"{path.name}#{frame.index}")
                rows.append({"set": "clip_frames", "label": "human", "name": f"{path.name}#{frame.index}",
                             "outcome": outcome, **cues})
        source.close()
    return rows


def render_rows(detector, check) -> list[dict]:
    """ICT head renders: the decision is that a render of the head model is a human face (never refused)."""
    import tempfile

    from PIL import Image
    from skimage import data

    from invertavatar.headmodel import load_head_model
    from invertavatar.io.bundle import read_bundle
    from invertavatar.pipeline import JobSpec, run_job
    from invertavatar.pipeline.synthetic import render_view

    model = load_head_model("ict")
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        Image.fromarray(data.astronaut()).save(photo)
        textured = read_bundle(run_job(JobSpec([photo], Path(tmp) / "a.avatar", texture_size=256)).bundle).albedo
    albedos = {"astronaut_texture": textured, "untextured_skin": np.full_like(textured, (200, 160, 140)),
               "untextured_grey": np.full_like(textured, 128)}
    identity = np.zeros(model.n_identity, np.float32)
    expression = np.zeros(model.n_expression, np.float32)
    rows = []
    for name, albedo in albedos.items():
        for yaw in (0.0, 0.45, 0.75):
            for shading in (True, False):  # unshaded (flat-lit) renders are what the tests' synthetic views use
                view = render_view(model, identity, expression, (yaw, 0.0, 0.0), albedo, size=512, shading=shading)
                lit = "shaded" if shading else "flat-lit"
                outcome, cues = outcome_of(detector, check, view.image, f"{name}@yaw{yaw}")
                rows.append({"set": "renders", "label": "render", "name": f"{name} {lit} yaw {yaw:.2f} rad",
                             "outcome": outcome, **cues})
    return rows


def augmented_rows(detector, check, devset: Path) -> list[dict]:
    """Hard negatives (animal crops and mirror images) and harder positives (mirrored, rolled human photos)."""
    import cv2

    from invertavatar.io.frames import open_source

    rows = []
    for label in ("animal", "human"):
        for path in sorted((devset / "photos" / label).iterdir()):
            source = open_source(path)
            image = next(iter(source)).image
            source.close()
            variants = {"mirror": image[:, ::-1]}
            if label == "animal":
                h, w = image.shape[:2]
                for scale in (0.5, 0.7):
                    ch, cw = int(h * scale), int(w * scale)
                    for fy in (0.0, 0.5, 1.0):
                        for fx in (0.0, 0.5, 1.0):
                            y, x = int((h - ch) * fy), int((w - cw) * fx)
                            crop = image[y:y + ch, x:x + cw]
                            variants[f"crop{scale}_{fx}_{fy}"] = crop
                            variants[f"crop{scale}_{fx}_{fy}_mirror"] = crop[:, ::-1]
            else:
                h, w = image.shape[:2]
                for angle in (-25, 25):
                    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
                    variants[f"roll{angle}"] = cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
            for variant, picture in variants.items():
                outcome, cues = outcome_of(detector, check, np.ascontiguousarray(picture), f"{path.name}:{variant}")
                rows.append({"set": "augmented", "label": label, "name": f"{path.name}:{variant}",
                             "outcome": outcome, **cues})
    return rows


def confusion(rows: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for row in rows:
        key = f"{row['set']}/{row['label']}"
        table.setdefault(key, {})
        table[key][row["outcome"]] = table[key].get(row["outcome"], 0) + 1
    return table


def rates(rows: list[dict]) -> dict[str, dict]:
    """False accepts (an animal built) and false rejects (a human refused by the check) among detected faces."""
    out = {}
    for name, subset in (("devset", [r for r in rows if r["set"] in ("devset", "clip_frames")]),
                         ("augmented", [r for r in rows if r["set"] == "augmented"]),
                         ("renders", [r for r in rows if r["set"] == "renders"])):
        found = [r for r in subset if r["outcome"] != "refused:no_face"]
        humans = [r for r in found if r["label"] in ("human", "multi", "art", "render")]
        animals = [r for r in found if r["label"] == "animal"]
        arts = [r for r in found if r["label"] == "art"]
        photos = [r for r in found if r["label"] in ("human", "multi")]
        out[name] = {
            "false_accepts": sum(r["outcome"].startswith("accepted") for r in animals),
            "animal_faces_found": len(animals),
            "false_rejects": sum(r["outcome"] == "refused:not_a_human_face" for r in humans),
            "human_faces_found": len(humans),
            "artworks_flagged": sum(r["outcome"] == "accepted:artwork_warning" for r in arts),
            "artwork_faces_found": len(arts),
            "photos_flagged_as_artwork": sum(r["outcome"] == "accepted:artwork_warning" for r in photos),
            "photo_faces_found": len(photos),
        }
    return out


def margins(rows: list[dict]) -> dict[str, dict]:
    """The range of each cue per class among detected faces (how far the thresholds are from the data)."""
    out: dict[str, dict] = {}
    for row in rows:
        key = "animal" if row["label"] == "animal" else ("art" if row["label"] == "art" else
                                                          ("render" if row["label"] == "render" else "human_photo"))
        for cue in ("votes", "flat_colour_share", "saturation", "detector_score"):
            if cue in row:
                low, high = out.setdefault(key, {}).get(cue, (np.inf, -np.inf))
                out[key][cue] = (min(low, row[cue]), max(high, row[cue]))
    return {k: {c: [round(float(a), 4), round(float(b), 4)] for c, (a, b) in v.items()} for k, v in out.items()}


def plot(rows: list[dict], path: Path) -> None:
    """Left: the cascades' votes per group. Right: votes against MediaPipe's face score, with the accepted region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from invertavatar.detect.human_check import HUMAN_MIN_SCORE, HUMAN_MIN_VOTES, STRONG_SCORE, STRONG_VOTES

    groups = [("human photos", lambda r: r["label"] in ("human", "multi") and r["set"] == "devset"),
              ("clip frames", lambda r: r["set"] == "clip_frames"), ("renders", lambda r: r["set"] == "renders"),
              ("art", lambda r: r["label"] == "art"),
              ("animals", lambda r: r["label"] == "animal" and r["set"] == "devset"),
              ("humans, augmented", lambda r: r["label"] == "human" and r["set"] == "augmented"),
              ("animals, augmented", lambda r: r["label"] == "animal" and r["set"] == "augmented")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
    rng = np.random.default_rng(0)
    for i, (name, keep) in enumerate(groups):
        found = [r for r in rows if keep(r) and "votes" in r]
        votes = np.array([r["votes"] for r in found]) + 0.5
        left.scatter(i + rng.uniform(-0.25, 0.25, len(votes)), votes, s=12, alpha=0.7)
        scores = [r.get("detector_score", np.nan) for r in found]
        right.scatter(scores, votes, s=14, alpha=0.7, label=name, marker="x" if "animal" in name else "o")
    left.axhline(HUMAN_MIN_VOTES + 0.5, color="k", lw=1, ls="--", label=f"HUMAN_MIN_VOTES = {HUMAN_MIN_VOTES}")
    left.axhline(STRONG_VOTES + 0.5, color="k", lw=1, ls=":", label=f"STRONG_VOTES = {STRONG_VOTES}")
    left.set_yscale("log")
    left.set_xticks(range(len(groups)), [g[0] for g in groups], rotation=20, fontsize=8)
    left.set_ylabel("Haar votes + 0.5 (log)")
    left.set_title("Votes of OpenCV's cascades per detected face", fontsize=10)
    left.legend(fontsize=8)
    # The accepted region of is_human_evidence, drawn as its boundary.
    edge_x = [0.0, HUMAN_MIN_SCORE, HUMAN_MIN_SCORE, STRONG_SCORE, STRONG_SCORE, 1.0]
    edge_y = [STRONG_VOTES, STRONG_VOTES, HUMAN_MIN_VOTES, HUMAN_MIN_VOTES, 1, 1]
    right.step(edge_x, np.array(edge_y) + 0.5, where="post", color="k", lw=1.2, label="accepted above/right")
    right.set_yscale("log")
    right.set_xlim(0.45, 1.0)
    right.set_xlabel("MediaPipe face score")
    right.set_ylabel("Haar votes + 0.5 (log)")
    right.set_title("The rule: votes and score together", fontsize=10)
    right.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=REPO.parent / "shared" / "devset")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the existing JSON")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads((OUT_DIR / "human_check.json").read_text())["rows"], OUT_DIR / "human_check.png")
        return 0
    if not (args.devset / "photos").is_dir():
        print(f"no devset at {args.devset}", file=sys.stderr)
        return 2
    from invertavatar.detect import make_detector
    from invertavatar.detect import human_check
    from invertavatar.detect.human_check import HumanFaceCheck

    check = HumanFaceCheck()
    with make_detector("mediapipe") as detector:
        rows = devset_rows(detector, check, args.devset)
        rows += render_rows(detector, check)
        if not args.no_augment:
            rows += augmented_rows(detector, check, args.devset)
    times = [r["check_ms"] for r in rows if "check_ms" in r]
    times_full = [r["check_ms_full"] for r in rows if "check_ms_full" in r]
    result = {
        "what": "human-face check: outcome per picture, confusion table, false-accept/false-reject rates",
        "thresholds": {name: getattr(human_check, name) for name in
                       ("HUMAN_MIN_VOTES", "HUMAN_MIN_SCORE", "STRONG_VOTES", "STRONG_SCORE", "VOTE_MIN_IOU",
                        "FLAT_COLOUR_SHARE", "COLOUR_STEP", "MONOCHROME_SATURATION", "GREY_SATURATION", "CROP_PX",
                        "FACE_PX")},
        "confusion": confusion(rows),
        "rates": rates(rows),
        "margins": margins(rows),
        "check_ms_median": round(statistics.median(times), 2) if times else None,
        "check_ms_full_median": round(statistics.median(times_full), 2) if times_full else None,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count()},
        "rows": rows,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "human_check.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, OUT_DIR / "human_check.png")
    print(json.dumps({k: result[k] for k in ("confusion", "rates", "margins", "check_ms_median",
                                             "check_ms_full_median")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
