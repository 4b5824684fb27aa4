"""Fixtures A and B: the prior's full forward from z, compared at every stored boundary (README §3-§6)."""

from __future__ import annotations

from typing import Callable

import torch

from invertavatar.neural.checkpoints import load_state_exact
from invertavatar.neural.config import config_from_official_kwargs
from invertavatar.neural.parity.fixture import Fixture, Row
from invertavatar.neural.parity.recipe import materialize
from invertavatar.neural.prior.generator import Next3DGenerator

Progress = Callable[[str], None]


def build_prior(fixture: Fixture, progress: Progress) -> Next3DGenerator:
    """Our generator for the fixture's constructor kwargs, loaded from the recipe by official names."""
    progress(f"{fixture.name}: materialising recipe weights")
    state, meta = materialize(fixture.weights_json)
    generator = Next3DGenerator(config_from_official_kwargs(meta["init_kwargs"]))
    load_state_exact(generator, state, source=f"{fixture.name} recipe")
    return generator.eval()


def prior_trace(generator: Next3DGenerator, z: torch.Tensor, c: torch.Tensor, uv: torch.Tensor) -> dict:
    """Everything the fixture stores, from our modules run in the fixture's settings (deterministic sampling)."""
    trace: dict = {}
    with torch.no_grad():
        ws = generator.mapping(z, c)  # first half of the 50-value label
        out = generator.synthesize(ws, c, uv, noise_mode="const", jitter=False, trace=trace)  # last half renders
    trace.update(ws=ws, feature_image=out.features, image_depth=out.depth, image=out.image)
    return trace


def fixture_keys(trace: dict) -> dict[str, torch.Tensor]:
    """Our trace under the fixture's key names and shapes."""
    flat: dict[str, torch.Tensor] = {}
    for group in ("texture_list", "static_list", "cond_list"):
        for i, t in enumerate(trace[group]):
            flat[f"{group}.{i}"] = t
    b = trace["ws"].shape[0]
    flat["full_alpha_256"] = trace["full_alpha"][:, None]
    flat["hole_mask_256"] = trace["hole_mask"][:, None]
    flat["ray_origins"] = trace["ray_origins"][:, :1]
    flat["depths_fine"] = trace["depths_fine"].reshape(b, -1, trace["depths_fine"].shape[-2], 1)
    for key in ("ws", "face_plane", "planes", "ray_directions", "weights_total", "feature_image", "image_depth",
                "image"):
        flat[key] = trace[key]
    return flat


def run_prior_fixture(fixture: Fixture, progress: Progress, generator: Next3DGenerator | None = None) -> list[Row]:
    """All rows of fixture A or B; ``generator`` = an already loaded prior (e.g. from a converted checkpoint)."""
    generator = generator if generator is not None else build_prior(fixture, progress)
    progress(f"{fixture.name}: forward (mapping, three syntheses, rendering, super-resolution)")
    trace = prior_trace(generator, fixture.tensor("in.z"), fixture.tensor("in.c"), fixture.tensor("in.uvcoords_image"))
    ours = fixture_keys(trace)
    rows: list[Row] = []
    for key in fixture.outputs():
        rows.extend(fixture.compare(key, ours[key]))
    return rows
