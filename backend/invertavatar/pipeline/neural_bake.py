"""The neural bake: renders of the neural avatar from views around the head, fused like photos into the UV atlas.

The renders enter the very same ``texture.TextureFusion`` as photos (visibility, view-angle and resolution
weights, silhouette margin) and the same ``texture.bake_atlas`` (mirror and pull-push fill, procedural eyes and
mouth), so ``textures/neural_baked.png`` has the albedo's layout and can replace it on the mesh. The views cover
what photos rarely show: the sides, above, below and the back of the head.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CancelledError, InvertAvatarError
from ..headmodel import HeadModel
from ..render.framing import portrait_camera
from ..texture import TextureFusion, bake_atlas

Progress = Callable[[str, float, str], None]

#: (name, yaw, pitch) in degrees: positive yaw = the subject's left, positive pitch = from above.
BAKE_VIEWS: tuple[tuple[str, float, float], ...] = (
    ("front", 0.0, 0.0), ("left", 45.0, 0.0), ("right", -45.0, 0.0), ("left side", 90.0, 0.0),
    ("right side", -90.0, 0.0), ("above", 0.0, 50.0), ("below", 0.0, -40.0), ("back left", 135.0, 0.0),
    ("back right", -135.0, 0.0), ("back", 180.0, 0.0),
)


def bake_tile_size(render_size: int) -> int:
    """Fusion resolution per skin tile matched to the renders: about one texel per rendered pixel on the face."""
    return int(min(1024, max(128, 2 * render_size)))


def bake_neural_texture(stage, mesh: dict[str, np.ndarray], model: HeadModel, iris_colour: np.ndarray | None = None,
                        skin_tile: int = 2048, progress: Progress | None = None,
                        cancel: threading.Event | None = None, **atlas_options) -> tuple[np.ndarray, np.ndarray, dict]:
    """Bake ``stage`` (a ``NeuralStage`` holding the avatar's session) at the neutral expression.

    ``mesh`` is the bundle's mesh (its personalised neutral ``vertices`` are the condition and the fusion's
    geometry); ``iris_colour`` and ``atlas_options`` go to ``texture.bake_atlas`` as for the photo texture (measured
    eye colours, scalp tone), so both atlases paint the eyes alike. Returns the baked atlas (S, S, 3) uint8, its
    coverage (S, S) uint8 (per-texel confidence, as ``coverage.png``) and figures (coverage fractions, views,
    render size, seconds).
    """
    started = time.perf_counter()
    report = progress or (lambda stage_name, fraction, message: None)
    size = stage.output_size
    vertices = np.asarray(mesh["vertices"], np.float32)
    fusion = TextureFusion(model, bake_tile_size(size))
    for i, (name, yaw, pitch) in enumerate(BAKE_VIEWS):
        if cancel is not None and cancel.is_set():
            raise CancelledError()
        report("neural", i / len(BAKE_VIEWS), f"neural bake: rendering the {name} view")
        camera = portrait_camera(vertices, size, size, yaw, pitch)
        image = stage.render(vertices, camera)
        fusion.add_frame(image, vertices, camera, 1.0)
    albedo, coverage, figures = bake_atlas(fusion, iris_colour, skin_tile=skin_tile, **atlas_options)
    figures = {k: v for k, v in figures.items() if k.startswith("coverage")}
    figures.update(views=[name for name, _, _ in BAKE_VIEWS], render_size=size,
                   tile_size=fusion.tile_size, seconds=round(time.perf_counter() - started, 3))
    return albedo, coverage, figures


def bake_bundle(source: Path, output: Path | None = None, progress: Progress | None = None,
                cancel: threading.Event | None = None) -> dict:
    """Bake (or re-bake) the neural texture of an existing neural avatar; writes ``output`` (default: in place).

    Returns the new manifest. A fit-only avatar is refused with ``no_neural_state``.
    """
    from ..headmodel import load_head_model
    from ..io.bundle import read_bundle, write_bundle
    from .neural_stage import STATE_FILE, NeuralStage

    bundle = read_bundle(source)
    if STATE_FILE not in bundle.state:
        raise InvertAvatarError("no_neural_state", f"{Path(source).name} was made without the neural inversion.",
                                "Reconstruct it in neural mode first (needs the neural checkpoints).")
    head = bundle.manifest.get("head_model", {})
    model = load_head_model("faceverse" if str(head.get("id", "")).startswith("faceverse") else "ict")
    if head.get("checksum") != model.checksum:
        raise InvertAvatarError("head_model_mismatch", f"{Path(source).name} was built with another head model.",
                                "Install the head model the avatar was made with.")
    iris, options = None, {}
    if "iris.json" in bundle.state:
        from .iris import IrisColour

        measured = IrisColour.from_bytes(bundle.state["iris.json"])
        iris = measured.colour()
        options = {"sclera_colour": measured.sclera(), "iris_radius_iod": measured.radius_iod()}
    stage = NeuralStage(model, bundle.state[STATE_FILE])
    baked, _, figures = bake_neural_texture(stage, bundle.mesh, model, iris, bundle.albedo.shape[0] // 2,
                                            progress, cancel, **options)
    if cancel is not None and cancel.is_set():
        raise CancelledError()
    bundle.neural_baked = baked
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files",)}
    manifest["neural_bake"] = figures
    bundle.manifest = manifest
    target = Path(output) if output is not None else Path(source)
    write_bundle(target, bundle, overwrite=target == Path(source))
    if progress is not None:
        progress("bundle", 1.0, f"wrote {target.name}")
    return bundle.manifest
