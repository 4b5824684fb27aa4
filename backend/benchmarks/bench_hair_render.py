"""What drawing a bundle's hair costs in the albedo preview (render/hair.py), on this machine.

    PYTHONPATH=backend python backend/benchmarks/bench_hair_render.py [--repeats 9] [--guides 100 300 600]
                                                                       [--sizes 512] [--bundle NAME.avatar ...]

The ICT head (mean identity) wears the synthetic combed-back groom of ``render.synthetic_hair`` with the given guide
counts; for each picture size the frontal and a 3/4 portrait camera render the bundle through
``renderers.render`` with and without hair, interleaved so both see the same load on the shared machine. Reported
per case (milliseconds): ``densify`` — the first call's strand interpolation (cached afterwards, so a reenactment
pays it once), ``with_hair`` / ``without_hair`` — a render's wall-clock median and minimum and its CPU time (all of
this process's threads) median, and ``hair_cost`` the differences (minimum wall, median CPU); also how many strands
and ribbon triangles were drawn. The cores are shared, so the minimum wall time and the CPU time are the cost; the
wall medians show the load. ``--bundle`` adds reconstructed avatars with hair (read with ``io.bundle.read_bundle``)
to the synthetic grooms. Writes docs/benchmarks/hair_render.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "benchmarks" / "hair_render.json"
SHARED_ASSETS = REPO.parent / "shared" / "assets"


def _bundle(model, guides: int):
    from invertavatar.io.bundle import Bundle
    from invertavatar.pipeline.avatar_mesh import mesh_arrays
    from invertavatar.render.synthetic_hair import synthetic_groom, synthetic_hair_params

    mesh = mesh_arrays(model, np.zeros(model.identity_basis.shape[0], np.float32))
    albedo = np.full((256, 256, 3), (190, 140, 120), np.uint8)
    return Bundle(manifest={"mode": "fit"}, mesh=mesh, albedo=albedo, coverage=np.full((256, 256), 255, np.uint8),
                  hair=synthetic_groom(mesh, guides=guides), hair_params=synthetic_hair_params())


def _time(call) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one call; CPU time counts every thread of this process (torch's, the software
    OpenGL rasterizer's), so it is the cost even when other jobs share the cores and stretch the wall time."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def _summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    return {"wall_median": round(statistics.median(walls), 1), "wall_min": round(min(walls), 1),
            "cpu_median": round(statistics.median(cpus), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--guides", type=int, nargs="+", default=[100, 300, 600])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512])
    parser.add_argument("--bundle", type=Path, nargs="*", default=[], help="avatar bundles with hair/ to add")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if SHARED_ASSETS.is_dir():
        os.environ.setdefault("INVERTAVATAR_ASSETS", str(SHARED_ASSETS))

    import torch

    from invertavatar.headmodel import load_head_model
    from invertavatar.io.bundle import read_bundle
    from invertavatar.render import hair as hair_module
    from invertavatar.render.framing import portrait_camera
    from invertavatar.render.rasterize import choose_backend
    from invertavatar.renderers import render

    model = load_head_model("ict")
    load_start = [round(x, 2) for x in os.getloadavg()]
    cases = []
    subjects = [(f"synthetic groom, {g} guides", _bundle(model, g)) for g in args.guides]
    subjects += [(path.name, read_bundle(path)) for path in args.bundle]
    for label, bundle in subjects:
        if bundle.hair is None:
            print(f"{label}: no hair, skipped")
            continue
        for size in args.sizes:
            for yaw in (0.0, 40.0):
                camera = portrait_camera(bundle.mesh["vertices"], size, size, yaw)
                render(bundle, camera=camera, hair=False)  # warm-up (OpenGL context, caches)
                hair_module._cache.clear()
                densify = _time(lambda: hair_module.bundle_strands(
                    bundle, hair_module.preview_strand_count(size, size)))[0]
                strands = hair_module.bundle_strands(bundle, hair_module.preview_strand_count(size, size))
                with_hair, without = [], []
                for _ in range(args.repeats):
                    with_hair.append(_time(lambda: render(bundle, camera=camera)))
                    without.append(_time(lambda: render(bundle, camera=camera, hair=False)))
                n, k = strands.points.shape[:2]
                case = {"subject": label, "guides": len(bundle.hair["curve_offsets"]) - 1, "size": size, "yaw": yaw,
                        "strands": n, "ribbon_triangles": n * (k - 1) * 2, "densify_ms": round(densify, 1),
                        "with_hair_ms": _summary(with_hair), "without_hair_ms": _summary(without)}
                case["hair_cost_ms"] = {
                    "wall_min": round(case["with_hair_ms"]["wall_min"] - case["without_hair_ms"]["wall_min"], 1),
                    "cpu_median": round(case["with_hair_ms"]["cpu_median"] - case["without_hair_ms"]["cpu_median"],
                                        1)}
                cases.append(case)
                print(json.dumps(case))
    report = {
        "benchmark": "hair_render",
        "command": "PYTHONPATH=backend python backend/benchmarks/bench_hair_render.py",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "rasterizer": choose_backend(None, torch.device("cpu")),
                    "load_average_start": load_start, "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "repeats": args.repeats,
        "settings": {"strands_per_512px": hair_module.STRANDS_PER_512, "strand_points_bounds": list(hair_module.STRAND_POINTS),
                     "min_width_px": hair_module.MIN_WIDTH_PX},
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
