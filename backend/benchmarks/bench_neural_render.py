"""Speed of the avatar renderers: neural frame time, viewport latency through the HTTP API, bake, reenactment.

    OMP_NUM_THREADS=1 PYTHONPATH=backend python backend/benchmarks/bench_neural_render.py [--official] [--quick]

Writes ``docs/benchmarks/neural_render.json`` and ``.png`` (``neural_render_quick.*`` with ``--quick``, the small
default of ``invertavatar bench``). ``tiny`` uses random weights (speed does not depend on
their values) unless ``--checkpoints DIR`` names trained ones; ``--official`` adds the official-size networks
(random weights, CPU at reduced neural resolution here; on CUDA at full resolution too). Wall-clock medians; the
machine's load average is recorded because the CPU is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "benchmarks" / "neural_render.json"


def _median_seconds(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _networks(size: str, checkpoints: Path | None, folder: Path):
    """(InversionNet, checkpoint folder) for ``size``: trained files when given, else random weights saved."""
    from invertavatar.neural.checkpoints import load_prior, save_prior
    from invertavatar.neural.inversion.checkpoints import load_encoders, save_encoders
    from invertavatar.neural.inversion.config import configs
    from invertavatar.neural.inversion.model import InversionNet
    from invertavatar.neural.prior.generator import Next3DGenerator

    if checkpoints is not None:
        prior = next(p for p in sorted(checkpoints.glob("*.safetensors")) if p.name != "encoders.safetensors")
        return load_encoders(checkpoints / "encoders.safetensors", load_prior(prior, "cpu")).eval(), checkpoints
    torch.manual_seed(0)
    prior_config, encoder_config = configs(size)
    net = InversionNet(Next3DGenerator(prior_config), encoder_config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_prior(folder / f"prior-{size}.safetensors", net.generator)
    save_encoders(folder / "encoders.safetensors", net)
    return net, folder


def bench_size(size: str, checkpoints: Path | None, quick: bool, work: Path) -> dict:
    from fastapi.testclient import TestClient

    from invertavatar.headmodel import load_head_model
    from invertavatar.io.bundle import write_bundle
    from invertavatar.pipeline.neural_bake import bake_bundle
    from invertavatar.render.framing import portrait_camera
    from invertavatar.renderers import render
    from invertavatar.renderers.synthetic import synthetic_bundles

    model = load_head_model("ict")
    net, folder = _networks(size, checkpoints, work / f"ck-{size}")
    os.environ["INVERTAVATAR_CHECKPOINTS"] = str(folder)
    fit, neural = synthetic_bundles(model, net)
    del net
    vertices = neural.mesh["vertices"]
    repeat = 1 if size == "official" else (3 if quick else 7)
    out: dict = {"size": size, "weights": "trained" if checkpoints else "random",
                 "output_resolution": None, "neural_resolution": None}
    started = time.perf_counter()
    render(neural, "neural", camera=portrait_camera(vertices, 64, 64))  # loads the networks, restores the state
    out["first_render_s"] = round(time.perf_counter() - started, 3)
    from invertavatar.renderers.neural import neural_stage_for

    config = neural_stage_for(neural).session.net.prior_config
    out["output_resolution"], out["neural_resolution"] = config.output_resolution, config.neural_rendering_resolution
    frame = {}
    rays = [config.neural_rendering_resolution] if size == "tiny" or torch.cuda.is_available() else []
    rays += [r for r in (32, 64) if r < config.neural_rendering_resolution]
    camera = portrait_camera(vertices, 512, 512, 20.0)
    for r in rays:
        frame[str(r)] = round(_median_seconds(lambda: render(neural, "neural", camera=camera, neural_resolution=r),
                                              repeat), 4)
    r = min(rays)  # the slow viewport's mode: fewest rays, no super-resolution
    frame[f"{r} raw"] = round(_median_seconds(
        lambda: render(neural, "neural", camera=camera, neural_resolution=r, super_resolution=False), repeat), 4)
    out["neural_frame_512_s"] = frame  # by rays per side ("raw": without the super-resolution)
    out["albedo_frame_512_s"] = round(_median_seconds(lambda: render(neural, "albedo", camera=camera), repeat), 4)

    # Viewport latency: the add-on's request through the real app (JSON in, PNG out), at a viewport's size.
    from invertavatar.server.app import create_app
    from invertavatar.server.config import ServerConfig

    config_server = ServerConfig.create(work / f"server-{size}", cleanup_interval_s=3600.0)
    token = "b" * 43
    app = create_app(config_server, token)
    latency = {}
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        avatar_id = "0" * 31 + ("1" if size == "tiny" else "2")
        write_bundle(app.state.service.worker.avatar_dir(avatar_id), neural)
        app.state.service.store.put_avatar(avatar_id, 1, 1)
        cam = portrait_camera(vertices, 480, 270, 10.0)
        body = {"width": 480, "height": 270, "camera": {"K": cam.K.tolist(), "R": cam.R.tolist(),
                                                        "t": cam.t.tolist()}}
        headers = {"Authorization": f"Bearer {token}"}
        cases = [("albedo", {"renderer": "albedo"})]
        cases += [(f"neural {r} rays", {"renderer": "neural", "neural_resolution": r}) for r in rays]
        cases += [(f"neural {min(rays)} rays raw", {"renderer": "neural", "neural_resolution": min(rays),
                                                     "super_resolution": False})]
        for name, extra in cases:
            def call(extra=extra):
                response = client.post(f"/v1/avatars/{avatar_id}/render", json={**body, **extra}, headers=headers)
                assert response.status_code == 200, response.text

            call()  # warm the bundle cache
            latency[name] = round(_median_seconds(call, repeat), 4)
    out["viewport_latency_480x270_s"] = latency

    if size == "tiny":
        source = work / "neural.avatar"
        write_bundle(source, neural, overwrite=True)
        started = time.perf_counter()
        manifest = bake_bundle(source, work / "baked.avatar")
        out["bake_s"] = round(time.perf_counter() - started, 3)
        out["bake_coverage"] = {k: round(v, 4) for k, v in manifest["neural_bake"].items() if k.startswith("cov")}
        out["reenact_fps_256"] = _reenact_fps(source, work, 8 if quick else 24)
    return out


def _reenact_fps(avatar: Path, work: Path, frames: int) -> dict:
    from invertavatar.headmodel.arkit import ARKIT_NAMES
    from invertavatar.renderers.reenact import animate

    jaw = ARKIT_NAMES.index("jawOpen")
    records = []
    for i in range(frames):
        arkit = [0.0] * 52
        arkit[jaw] = 0.5 * (1 - np.cos(2 * np.pi * i / 12))
        half = 0.2 * np.sin(2 * np.pi * i / frames)
        records.append({"index": i, "arkit": arkit, "head_rotation": [float(np.cos(half)), 0, float(np.sin(half)), 0]})
    tracks = work / "tracks.json"
    tracks.write_text(json.dumps({"fps": 24, "arkit_names": list(ARKIT_NAMES), "frames": records}))
    fps = {}
    for renderer in ("albedo", "neural"):
        started = time.perf_counter()
        animate(avatar, tracks, work / f"{renderer}.mp4", renderer=renderer, size=256)
        fps[renderer] = round(frames / (time.perf_counter() - started), 2)
    return fps


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels, values = [], []
    for run in results["runs"]:
        for rays, seconds in run["neural_frame_512_s"].items():
            labels.append(f"{run['size']} neural\n{rays.replace(' raw', '')}² rays{' raw' if 'raw' in rays else ''}")
            values.append(seconds)
        labels.append(f"{run['size']} albedo")
        values.append(run["albedo_frame_512_s"])
    ax.barh(labels, values, color="#4a7fb5")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per 512² frame (CPU, log scale)")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3g} s", va="center", fontsize=8)
    ax.set_title(f"Renderer speed ({results['device']}, load avg {results['load_average'][0]:.1f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", action="store_true", help="also the official-size networks (slow on CPU)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--checkpoints", type=Path, help="trained tiny checkpoints (prior + encoders.safetensors)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default docs/benchmarks/neural_render.json (neural_render_quick.json with --quick)")
    args = parser.parse_args()
    args.out = args.out or (OUT.with_name("neural_render_quick.json") if args.quick else OUT)
    from invertavatar.device import describe_device, select_device

    with tempfile.TemporaryDirectory(prefix="bench-neural-render-") as tmp:
        os.environ.setdefault("INVERTAVATAR_HOME", str(Path(tmp) / "home"))
        runs = [bench_size("tiny", args.checkpoints, args.quick, Path(tmp))]
        print(json.dumps(runs[-1], indent=1), flush=True)
        if args.official:
            runs.append(bench_size("official", None, args.quick, Path(tmp)))
            print(json.dumps(runs[-1], indent=1), flush=True)
    results = {"device": describe_device(select_device()), "threads": torch.get_num_threads(),
               "load_average": [round(x, 2) for x in os.getloadavg()], "runs": runs,
               "command": " ".join(["python", *sys.argv])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
