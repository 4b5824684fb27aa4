"""Backend fixtures: one real-photo reconstruction, its texture as a known texture, synthetic views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.synthetic import render_view

GT_SEED = 7


@pytest.fixture(scope="session")
def astronaut_result(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("astronaut")
    photo = folder / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    stages = []
    result = run_job(JobSpec([photo], folder / "astronaut.avatar"), progress=lambda s, f, m: stages.append((s, f)))
    return result, stages


@pytest.fixture(scope="session")
def known_albedo(astronaut_result) -> np.ndarray:
    """A real face texture in our atlas layout (from the astronaut photo), used as ground truth for renders."""
    return read_bundle(astronaut_result[0].bundle).albedo


@pytest.fixture(scope="session")
def ground_truth(ict_model):
    rng = np.random.default_rng(GT_SEED)
    identity = rng.normal(0.0, 0.8, ict_model.n_identity).astype(np.float32)
    return {"identity": identity}


@pytest.fixture(scope="session")
def shape_error_mm(ict_model, ground_truth):
    """f(vertices or identity) → mean face-vertex distance (mm) of a neutral head from the ground truth's, after a
    similarity alignment (scale and depth trade off in one camera)."""
    import torch

    from invertavatar.track.correspondence import similarity_transform

    true = ict_model.evaluate(torch.from_numpy(ground_truth["identity"])[None])[0].numpy()
    face = ict_model.regions["narrow_face"]

    def error(shape: np.ndarray) -> float:
        shape = np.asarray(shape, np.float32)
        if shape.ndim == 1:  # identity coefficients
            shape = ict_model.evaluate(torch.from_numpy(shape)[None])[0].numpy()
        scale, rotation, shift = similarity_transform(shape[face].astype(np.float64), true[face].astype(np.float64))
        return float(np.linalg.norm(scale * shape[face] @ rotation.T + shift - true[face], axis=1).mean() * 1000)

    return error


def expression_of(model, **weights: float) -> np.ndarray:
    expression = np.zeros(model.n_expression, np.float32)
    for name, value in weights.items():
        expression[model.expression_names.index(name)] = value
    return expression


@pytest.fixture(scope="session")
def synthetic_views(ict_model, ground_truth, known_albedo, tmp_path_factory):
    """Eight renders of one known head: new yaw/pitch each, a few expressions; written as PNG files."""
    folder = tmp_path_factory.mktemp("views")
    poses = [(0.0, 0.0, 0.0), (0.45, 0.05, 0.0), (-0.45, -0.05, 0.0), (0.0, 0.25, 0.05), (0.75, 0.0, -0.05),
             (-0.75, 0.0, 0.05), (0.25, -0.2, 0.0), (-0.25, 0.2, 0.0)]
    expressions = [expression_of(ict_model), expression_of(ict_model, jawOpen=0.35),
                   expression_of(ict_model, mouthSmile_L=0.6, mouthSmile_R=0.6), expression_of(ict_model),
                   expression_of(ict_model, eyeBlink_L=0.5, eyeBlink_R=0.5), expression_of(ict_model),
                   expression_of(ict_model, browInnerUp_L=0.6, browInnerUp_R=0.6), expression_of(ict_model)]
    views = []
    for i, (pose, expression) in enumerate(zip(poses, expressions)):
        view = render_view(ict_model, ground_truth["identity"], expression, pose, known_albedo, shading=False)
        path = folder / f"view{i}.png"
        Image.fromarray(view.image).save(path)
        views.append((path, view))
    return views
