"""Tracking accuracy with FaceVerse beside ICT, on synthetic renders with known parameters.

The synthetic FaceVerse-v3.1-format file (headmodel/faceverse_synthetic.py) is built on ICT's head surface, so both
models can render the *same* head: one identity (ICT's 100 coefficients; FaceVerse's first 100 equal them, the other
50 zero), the same poses and the same expressions (each ARKit shape of a view drives ICT's shape and the FaceVerse
component that equals it). Each model's views are textured with its own atlas, fused from the astronaut photo
(public domain) through that model, and tracked by a fresh incremental tracker (all views are keyframes).

Per view and model: landmark reprojection error (of the eye distance), expression error (mean distance between the
fitted and the true expression displacement over the face vertices, mm) and ARKit weight error (mean absolute, over
the names the model can express). Writes docs/benchmarks/faceverse_tracking.json.

    OMP_NUM_THREADS=1 INVERTAVATAR_HOME=/tmp/fvbench PYTHONPATH=backend python backend/benchmarks/bench_faceverse_tracking.py
"""

from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from invertavatar import paths
from invertavatar.headmodel import ARKIT_NAMES, load_head_model
from invertavatar.headmodel.faceverse_synthetic import synthetic_expression_truth, synthetic_faceverse_dict
from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.synthetic import render_view

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "benchmarks" / "faceverse_tracking.json"
IDENTITY_SEED = 7
POSES = [(0.0, 0.0, 0.0), (0.45, 0.05, 0.0), (-0.45, -0.05, 0.0), (0.0, 0.25, 0.05), (0.3, -0.15, 0.0),
         (-0.25, 0.1, -0.05), (0.15, 0.0, 0.05), (-0.1, -0.2, 0.0)]
EXPRESSIONS = [{}, {"jawOpen": 0.5}, {"mouthSmile_L": 0.7, "mouthSmile_R": 0.7}, {"eyeBlink_L": 0.8, "eyeBlink_R": 0.8},
               {"browInnerUp_L": 0.7, "browInnerUp_R": 0.7}, {"jawOpen": 0.3, "mouthFunnel": 0.5},
               {"mouthFrown_L": 0.6, "mouthFrown_R": 0.6, "browDown_L": 0.5, "browDown_R": 0.5}, {"mouthPucker": 0.6}]


def albedo_for(model_name: str, folder: Path) -> np.ndarray:
    """The astronaut's as-photographed texture in this model's atlas (as the tests' known texture)."""
    import cv2
    from skimage import data

    photo = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    result = run_job(JobSpec([photo], folder / f"{model_name}.avatar", head_model=model_name, texture_size=512,
                             overwrite=True))
    bundle = read_bundle(result.bundle)
    return cv2.resize(bundle.photographed, bundle.albedo.shape[1::-1], interpolation=cv2.INTER_LINEAR)


def truth_vectors(ict, fv, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(ICT expression (53,), FaceVerse expression (171,)) of one view's ICT-named weights."""
    mix = synthetic_expression_truth(ict)
    ict_e = np.zeros(ict.n_expression, np.float32)
    fv_e = np.zeros(fv.n_expression, np.float32)
    for name, value in weights.items():
        k = ict.expression_names.index(name)
        ict_e[k] = value
        fv_e[int(np.argmax(mix[k]))] = value  # the component that is exactly this shape
    return ict_e, fv_e


def track(model, views, truths, arkit_truths) -> list[dict]:
    from invertavatar.detect import make_detector
    from invertavatar.track import Tracker

    tracker = Tracker(model)
    face = np.asarray(model.regions["face"])
    basis = torch.from_numpy(np.asarray(model.expression_basis[:, face], np.float32))
    rows = []
    with make_detector("mediapipe") as detector:
        for i, (view, truth, arkit) in enumerate(zip(views, truths, arkit_truths)):
            fit = tracker.add_frame(detector.detect(view.image, f"view{i}"), view.image.shape[:2])
            delta = torch.einsum("e,evc->vc", torch.from_numpy(fit.expression - truth).float(), basis)
            available = model.arkit.available
            rows.append({"view": i, "landmark_error_iod": round(float(fit.landmark_error_iod), 4),
                         "expression_error_mm": round(float(delta.norm(dim=1).mean()) * 1000, 3),
                         "arkit_error": round(float(np.abs(fit.arkit - arkit)[available].mean()), 4)})
    return rows


def transfer_on_another_head(ict, sd: float = 1.5, seed: int = 3) -> dict:
    """The ARKit transfer when the FaceVerse neutral is another person (its first 100 identity coefficients drawn
    with ``sd``): how much the registration, not the basis, limits the fit."""
    from invertavatar.headmodel.faceverse import faceverse_from_dict
    from invertavatar.headmodel.faceverse_arkit import fit_transfer

    raw = synthetic_faceverse_dict(ict)
    coeffs = np.zeros(raw["idBase"].shape[1], np.float32)
    coeffs[: ict.n_identity] = np.random.default_rng(seed).normal(0, sd, ict.n_identity)
    raw["meanshape"] = raw["meanshape"] + raw["idBase"] @ coeffs
    transfer = fit_transfer(ict, faceverse_from_dict(raw, "other-head"))
    kept = [k for k, n in enumerate(ARKIT_NAMES) if n not in transfer.missing]
    return {"identity_sd": sd, "missing": list(transfer.missing),
            "kept_residual_mean": round(float(np.nanmean(transfer.residual[kept])), 3),
            "kept_residual_max": round(float(np.nanmax(transfer.residual[kept])), 3),
            "residual": {n: (None if np.isnan(r) else round(float(r), 3))
                         for n, r in zip(ARKIT_NAMES, transfer.residual)}}


def main() -> None:
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="fv-bench-"))
    ict = load_head_model("ict")
    paths.faceverse_dir().mkdir(parents=True, exist_ok=True)
    np.save(paths.faceverse_dir() / "faceverse_v3_1.npy", synthetic_faceverse_dict(ict), allow_pickle=True)
    load_head_model.cache_clear()
    ict, fv = load_head_model("ict"), load_head_model("faceverse")
    identity = np.random.default_rng(IDENTITY_SEED).normal(0.0, 0.8, ict.n_identity).astype(np.float32)
    fv_identity = np.zeros(fv.n_identity, np.float32)
    fv_identity[: ict.n_identity] = identity
    report = {"machine": platform.processor() or platform.machine(), "views": len(POSES), "models": {}}
    for name, model, ident in (("ict", ict, identity), ("faceverse", fv, fv_identity)):
        albedo = albedo_for(name, folder)
        views, truths, arkits = [], [], []
        for pose, weights in zip(POSES, EXPRESSIONS):
            ict_e, fv_e = truth_vectors(ict, fv, weights)
            expression = ict_e if name == "ict" else fv_e
            views.append(render_view(model, ident, expression, pose, albedo, size=512, shading=False))
            truths.append(expression)
            # ARKit truth: the ICT weights read as ARKit (halves averaged, as the tracker reports them).
            counts = np.maximum(ict.arkit.to_arkit.sum(1), 1)
            arkits.append(ict.arkit.to_arkit @ ict_e / counts)
        Image.fromarray(np.concatenate([v.image for v in views[:4]], 1)).save(folder / f"{name}_views.png")
        rows = track(model, views, truths, arkits)
        report["models"][name] = {
            "per_view": rows, "vertices": model.n_vertices,
            "mean": {k: round(float(np.mean([r[k] for r in rows])), 4)
                     for k in ("landmark_error_iod", "expression_error_mm", "arkit_error")},
            "arkit_missing": list(model.arkit.missing)}
        print(name, report["models"][name]["mean"])
    if "arkit_residual" in fv.extras:
        report["faceverse_arkit_residual"] = {n: (None if np.isnan(r) else round(float(r), 3))
                                              for n, r in zip(ARKIT_NAMES, fv.extras["arkit_residual"])}
    report["arkit_transfer_other_head"] = transfer_on_another_head(ict)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print("wrote", OUT, "views in", folder)


if __name__ == "__main__":
    main()
