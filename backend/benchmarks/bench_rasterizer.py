"""Benchmark: the rasterizer backends on the ICT head (52k triangles) at 256², 512² and 1024² on this machine.

For each backend that runs here (``torch``; ``opengl`` through moderngl/EGL; ``nvdiffrast`` when importable on CUDA)
and each size, a fresh worker process renders the ICT Face Model Light neutral mesh (quads split, centimetres →
metres) seen by a frontal camera, and reports milliseconds per call of

* ``ids``: the discrete visibility step alone (which triangle wins each pixel), and
* ``rasterize``: the full public call (visibility + differentiable perspective-correct barycentrics and depth),

as the median and minimum of ``--repeats`` calls after one warm-up call (timed separately: it includes creating
the OpenGL context), the median CPU time per call (all threads, so contention from other processes shows as a
wall/CPU gap), and the peak resident memory the calls added (VmHWM after − VmRSS before the first call). The worker
also saves its triangle ids so the parent can report how many pixels each backend decides differently from torch.
Writes docs/benchmarks/rasterizer.json and docs/benchmarks/rasterizer.png.

    PYTHONPATH=backend python backend/benchmarks/bench_rasterizer.py [--repeats 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"
SIZES = (256, 512, 1024)
SHARED_NPZ = REPO.parent / "shared" / "assets" / "ict-face-model" / "ict_face_light.npz"


def ict_npz_path() -> Path:
    """The ICT npz: the installed asset (or INVERTAVATAR_ASSETS), else the shared offline copy beside the repo."""
    try:
        from invertavatar import assets

        return Path(assets.find_asset(assets.ICT))
    except Exception:
        return SHARED_NPZ


def load_ict_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Neutral vertices in metres (V,3) and triangles (T,3) of the ICT npz."""
    from invertavatar.headmodel.base import split_polygons

    with np.load(path) as npz:
        vertices = npz["vertices"].astype(np.float32) / 100.0  # the npz is in centimetres
        triangles, _, _ = split_polygons(npz["faces"], npz["face_uv"])
    return vertices, triangles


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker(backend: str, size: int, repeats: int, threads: int, ids_out: str) -> dict:
    """Time one backend at one size in this (fresh) process; return the measurements."""
    import torch

    from invertavatar.render import Camera, rasterize
    from invertavatar.render import raster_gl, raster_nvdiffrast, raster_torch
    from invertavatar.render.rasterize import as_triangles, triangle_mask

    torch.set_num_threads(threads)
    device = torch.device("cuda" if backend == "nvdiffrast" else "cpu")
    vertices, triangles = load_ict_mesh(ict_npz_path())
    camera = Camera.frontal(1.5 * size, size, size, 0.6, device=device)
    screen = camera.project(torch.from_numpy(vertices).to(device)[None])
    tris = as_triangles(triangles, vertices.shape[0], device)
    valid = triangle_mask(screen, tris)
    step = {"torch": raster_torch, "opengl": raster_gl, "nvdiffrast": raster_nvdiffrast}[backend].rasterize_ids

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(call) -> tuple[list[float], list[float]]:
        walls, cpus = [], []
        for _ in range(repeats):
            sync()
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            sync()
            walls.append((time.perf_counter() - wall) * 1000.0)
            cpus.append((time.process_time() - cpu) * 1000.0)
        return walls, cpus

    rss_before = _status_kb("VmRSS")
    start = time.perf_counter()
    fragments = rasterize(screen, tris, size, size, backend=backend)
    first_ms = (time.perf_counter() - start) * 1000.0
    ids_wall, ids_cpu = timed(lambda: step(screen, tris, valid, size, size))
    full_wall, full_cpu = timed(lambda: rasterize(screen, tris, size, size, backend=backend))
    peak_kb = _status_kb("VmHWM") - rss_before
    np.save(ids_out, fragments.tri_id[0].cpu().numpy().astype(np.int32))
    result = {
        "backend": backend, "size": size, "triangles": int(tris.shape[0]), "threads": threads,
        "first_call_ms": first_ms,
        "ids_median_ms": statistics.median(ids_wall), "ids_min_ms": min(ids_wall),
        "ids_cpu_median_ms": statistics.median(ids_cpu),
        "rasterize_median_ms": statistics.median(full_wall), "rasterize_min_ms": min(full_wall),
        "rasterize_cpu_median_ms": statistics.median(full_cpu),
        "peak_rss_added_mb": peak_kb / 1024.0, "covered_fraction": float(fragments.mask.float().mean()),
        "repeats": repeats,
    }
    if backend == "opengl":
        result["renderer"] = raster_gl.renderer_name()
    return result


def run_worker(backend: str, size: int, repeats: int, threads: int, ids_out: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO / "backend") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, __file__, "--worker", backend, str(size), "--repeats", str(repeats),
                           "--threads", str(threads), "--ids-out", ids_out],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {backend} {size} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend in sorted({r["backend"] for r in results}):
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["size"])
        sizes = [r["size"] for r in rows]
        line, = ax_t.plot(sizes, [r["rasterize_median_ms"] for r in rows], "o-", label=f"{backend}: rasterize()")
        ax_t.plot(sizes, [r["ids_median_ms"] for r in rows], "s--", color=line.get_color(),
                  label=f"{backend}: visibility step only")
        ax_t.plot(sizes, [r["rasterize_min_ms"] for r in rows], "v", color=line.get_color(), alpha=0.5)
        ax_m.plot(sizes, [r["peak_rss_added_mb"] for r in rows], "o-", color=line.get_color(), label=backend)
    for ax in (ax_t, ax_m):
        ax.set_xscale("log", base=2)
        ax.set_xticks(SIZES, [f"{s}²" for s in SIZES])
        ax.set_xlabel("image size")
        ax.grid(alpha=0.3)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("ms per call (median; ▼ = min)")
    ax_t.set_title("ICT head, 52k triangles, 2-core CPU")
    ax_t.legend(fontsize=8)
    ax_m.set_ylabel("peak RSS added by the calls (MB)")
    ax_m.set_title("memory")
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--ids-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.repeats, args.threads, args.ids_out)))
        return

    import torch

    from invertavatar.render import available_backends

    backends = available_backends("cpu") + (["nvdiffrast"] if "nvdiffrast" in available_backends("cuda")
                                            and torch.cuda.is_available() else [])
    results = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            ids = {}
            for backend in backends:
                ids_out = os.path.join(tmp, f"{backend}_{size}.npy")
                result = run_worker(backend, size, args.repeats, args.threads, ids_out)
                ids[backend] = np.load(ids_out)
                print(f"{backend:>10} {size:>5}²  rasterize {result['rasterize_median_ms']:8.1f} ms "
                      f"(min {result['rasterize_min_ms']:.1f})  visibility {result['ids_median_ms']:8.1f} ms  "
                      f"peak +{result['peak_rss_added_mb']:.0f} MB", flush=True)
                results.append(result)
            for result in results:
                if result["size"] == size and result["backend"] != "torch":
                    result["pixels_differing_from_torch"] = float((ids[result["backend"]] != ids["torch"]).mean())
    report = {
        "benchmark": "rasterizer", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
        "mesh": "ICT Face Model Light neutral, quads split into triangles, metres; frontal camera f = 1.5 × size, "
                "0.6 m away",
        "results": results,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "rasterizer.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, OUT_DIR / "rasterizer.png")
    print(f"wrote {OUT_DIR / 'rasterizer.json'} and {OUT_DIR / 'rasterizer.png'}")


if __name__ == "__main__":
    main()
