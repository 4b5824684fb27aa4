"""Calibrate where MediaPipe's landmarks sit on a head model's surface, by looking at renders of that model.

Nearest-vertex matching of MediaPipe's canonical mesh leaves millimetre-scale biases, and biased correspondences
pull the fitted identity away from the truth the more frames agree on them. Here the model's mean head, textured
with a real face (reconstructed from a packaged photo), is rendered from several angles; MediaPipe's landmarks on
each render are traced back through the rasterizer to the surface point under them; the per-view surface points are
averaged on the neutral mesh and the most central hit becomes the table entry (triangle corners and barycentrics).
Landmarks whose hits scatter are trusted less.

    python -m invertavatar.track.calibrate            # writes track/data/mediapipe-<model>-<checksum>.npz
    python -m invertavatar.track.calibrate --eyelids-only   # re-measures the eyelid contours, keeps the rest
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..detect.landmark_schemes import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR
from ..headmodel import HeadModel, load_head_model
from ..render import Camera, rasterize
from .correspondence import calibration_path

VIEWS = [(yaw, pitch, 0.0) for yaw in (-0.5, -0.25, 0.0, 0.25, 0.5) for pitch in (-0.15, 0.1)]
EYELIDS = np.r_[RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR]
SCATTER_SCALE = 0.004  # metres of scatter at which a landmark's weight halves


def texture_from_photo(photo: str, folder: Path) -> np.ndarray:
    """A face texture in our atlas: reconstruct the packaged photo with the current correspondences."""
    from ..cli.reconstruct_cmd import sample_photo
    from ..io.bundle import read_bundle
    from ..pipeline import JobSpec, run_job

    path = sample_photo(photo, folder)
    result = run_job(JobSpec([path], folder / "texture.avatar", texture_size=1024))
    return read_bundle(result.bundle).albedo


def surface_hits(model: HeadModel, albedo: np.ndarray, views=VIEWS, size: int = 512) -> tuple[list, list]:
    """Per view: landmark ids seen and their neutral-mesh surface points (triangle corners, barycentrics)."""
    from ..detect import make_detector
    from ..pipeline.synthetic import render_view

    identity = np.zeros(model.n_identity, np.float32)
    expression = np.zeros(model.n_expression, np.float32)
    hits_ids, hits = [], []
    with make_detector("mediapipe") as detector:
        for pose in views:
            view = render_view(model, identity, expression, pose, albedo, size=size)
            detection = detector.detect(view.image, f"calibration view {pose}")
            k = torch.tensor([[view.focal, 0, size / 2], [0, view.focal, size / 2], [0, 0, 1.0]])
            camera = Camera(k, torch.from_numpy(view.rotation).float(), torch.from_numpy(view.translation).float(),
                            size, size)
            vertices = torch.from_numpy(model.vertices)[None]
            fragments = rasterize(camera.project(vertices), model.triangles, size, size, cull_backfaces=True)
            pixels = np.floor(detection.landmarks[:468] + 0.5).astype(int)  # the pixel whose centre is nearest
            inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < size) & (pixels[:, 1] >= 0) & (pixels[:, 1] < size)
            ids = np.nonzero(inside)[0]
            tri = fragments.tri_id[0, pixels[ids, 1], pixels[ids, 0]].numpy()
            bary = fragments.bary[0, pixels[ids, 1], pixels[ids, 0]].detach().numpy()
            on_mesh = tri >= 0
            hits_ids.append(ids[on_mesh])
            hits.append((model.triangles[tri[on_mesh]], bary[on_mesh]))
    return hits_ids, hits


def calibrate(model: HeadModel, albedo: np.ndarray) -> dict[str, np.ndarray]:
    """The correspondence table (arrays of ``Correspondence``) from renders textured with ``albedo``."""
    hits_ids, hits = surface_hits(model, albedo)
    per_landmark: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for ids, (corners, bary) in zip(hits_ids, hits):
        for landmark, c, b in zip(ids, corners, bary):
            per_landmark.setdefault(int(landmark), []).append((c, b))
    landmark_ids, table_corners, table_bary, weights = [], [], [], []
    for landmark, entries in sorted(per_landmark.items()):
        if len(entries) < 3:
            continue  # seen too rarely to trust
        points = np.array([(model.vertices[c] * b[:, None]).sum(0) for c, b in entries])
        centre = points.mean(0)
        distance = np.linalg.norm(points - centre, axis=1)
        best = int(distance.argmin())
        scatter = float(np.median(distance))
        landmark_ids.append(landmark)
        table_corners.append(entries[best][0])
        table_bary.append(entries[best][1])
        weights.append(1.0 / (1.0 + (scatter / SCATTER_SCALE) ** 2))
    return {"landmark_ids": np.array(landmark_ids, np.int64), "corners": np.array(table_corners, np.int64),
            "bary": np.array(table_bary, np.float32), "weights": np.array(weights, np.float32)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="grace_hopper", choices=("grace_hopper", "astronaut"))
    parser.add_argument("--head-model", default="ict")
    parser.add_argument("--eyelids-only", action="store_true",
                        help="re-measure only the eyelid-contour landmarks and keep the shipped table's other rows")
    args = parser.parse_args(argv)
    model = load_head_model(args.head_model)
    out = calibration_path(model)
    if args.eyelids_only and not out.exists():
        parser.error(f"--eyelids-only needs a table to keep: {out} does not exist (run without it first)")
    if out.exists() and not args.eyelids_only:
        out.unlink()  # texture the renders with the uncalibrated table, like a first run
    with tempfile.TemporaryDirectory() as tmp:
        albedo = texture_from_photo(args.photo, Path(tmp))
    table = calibrate(model, albedo)
    if args.eyelids_only:
        with np.load(out, allow_pickle=False) as shipped:
            mine = ~np.isin(shipped["landmark_ids"], EYELIDS)
            theirs = np.isin(table["landmark_ids"], EYELIDS)
            merged = {k: np.concatenate([shipped[k][mine], table[k][theirs]]) for k in table}
        order = np.argsort(merged["landmark_ids"], kind="stable")
        table = {k: v[order] for k, v in merged.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **table)
    print(f"wrote {out}: {len(table['landmark_ids'])} landmarks, median weight {np.median(table['weights']):.2f}")


if __name__ == "__main__":
    main()
