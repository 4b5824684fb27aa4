"""Benchmark: the rasterizer backends on the ICT head (52k triangles) at 256², 512² and 1024² on this machine.

For each backend that runs here (``torch``; ``opengl`` through moderngl/EGL; ``nvdiffrast`` when importable on CUDA)
and each size, the ICT Face Model Light neutral mesh (quads split, centimetres → metres) seen by a frontal camera is
rendered, and the report gives milliseconds per call of

* ``ids``: the discrete visibility step alone (which triangle wins each pixel), and
* ``rasterize``: the full public call (visibility + differentiable perspective-correct barycentrics and depth),

as the median and minimum of ``--repeats`` calls. The machine is shared, so the backends' calls are interleaved in
one process per size (each sees the same load) after a warm-up, and the minimum is reported next to the median.
A fresh process per backend and size then measures the first call (it includes creating the OpenGL context) and the
peak resident memory the calls added (VmHWM after − VmRSS before the first call), and saves its triangle ids so the
parent can report how many pixels each backend decides differently from torch.
Writes docs/benchmarks/rasterizer.json and docs/benchmarks/rasterizer.png.

    PYTHONPATH=backend python backend/benchmarks/bench_rasterizer.py [--repeats 15] [--threads 1 2]
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


def _scene(size: int, device_name: str):
    """Screen vertices, triangles and valid mask of the ICT head seen by the benchmark camera at ``size``²."""
    import torch

    from invertavatar.render import Camera
    from invertavatar.render.rasterize import as_triangles, triangle_mask

    device = torch.device(device_name)
    vertices, triangles = load_ict_mesh(ict_npz_path())
    camera = Camera.frontal(1.5 * size, size, size, 0.6, device=device)
    screen = camera.project(torch.from_numpy(vertices).to(device)[None])
    tris = as_triangles(triangles, vertices.shape[0], device)
    return screen, tris, triangle_mask(screen, tris)


def _device_of(backend: str) -> str:
    return "cuda" if backend == "nvdiffrast" else "cpu"


def memory_worker(backend: str, size: int, repeats: int, threads: int, ids_out: str) -> dict:
    """Peak memory and first-call time of one backend at one size, in a fresh process; saves its triangle ids."""
    import torch

    from invertavatar.render import rasterize

    torch.set_num_threads(threads)
    screen, tris, _ = _scene(size, _device_of(backend))
    rss_before = _status_kb("VmRSS")
    start = time.perf_counter()
    fragments = rasterize(screen, tris, size, size, backend=backend)
    first_ms = (time.perf_counter() - start) * 1000.0
    for _ in range(repeats):
        rasterize(screen, tris, size, size, backend=backend)
    peak_kb = _status_kb("VmHWM") - rss_before
    np.save(ids_out, fragments.tri_id[0].cpu().numpy().astype(np.int32))
    return {"backend": backend, "size": size, "first_call_ms": first_ms, "peak_rss_added_mb": peak_kb / 1024.0,
            "covered_fraction": float(fragments.mask.float().mean()), "triangles": int(tris.shape[0])}


def timing_worker(backends: list[str], size: int, repeats: int, threads: int) -> list[dict]:
    """Milliseconds per call of every backend at one size, calls interleaved so that all see the same load."""
    import torch

    from invertavatar.render import raster_gl, raster_nvdiffrast, raster_torch, rasterize

    torch.set_num_threads(threads)
    steps = {"torch": raster_torch, "opengl": raster_gl, "nvdiffrast": raster_nvdiffrast}
    scenes = {name: _scene(size, _device_of(name)) for name in backends}
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}

    def one(name: str, what: str) -> None:
        screen, tris, valid = scenes[name]
        if what == "ids":
            steps[name].rasterize_ids(screen, tris, valid, size, size)
        else:
            rasterize(screen, tris, size, size, backend=name)

    for name in backends:  # warm-up: contexts, shader compilation, allocator
        one(name, "ids")
        one(name, "rasterize")
    for _ in range(repeats):
        for name in backends:
            for what in ("ids", "rasterize"):
                if _device_of(name) == "cuda":
                    torch.cuda.synchronize()
                wall, cpu = time.perf_counter(), time.process_time()
                one(name, what)
                if _device_of(name) == "cuda":
                    torch.cuda.synchronize()
                walls.setdefault((name, what), []).append((time.perf_counter() - wall) * 1000.0)
                cpus.setdefault((name, what), []).append((time.process_time() - cpu) * 1000.0)
    rows = []
    for name in backends:
        row = {"backend": name, "size": size, "threads": threads, "repeats": repeats}
        for what in ("ids", "rasterize"):
            row[f"{what}_median_ms"] = statistics.median(walls[(name, what)])
            row[f"{what}_min_ms"] = min(walls[(name, what)])
            row[f"{what}_cpu_median_ms"] = statistics.median(cpus[(name, what)])
        if name == "opengl":
            row["renderer"] = raster_gl.renderer_name()
        rows.append(row)
    return rows


def run_worker(args: list[str]):
    env = dict(os.environ, PYTHONPATH=str(REPO / "backend") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_full, ax_ids, ax_mem) = plt.subplots(1, 3, figsize=(15, 4.4))
    colours = {"torch": "tab:orange", "opengl": "tab:blue", "nvdiffrast": "tab:green"}
    for backend in sorted({r["backend"] for r in results}):
        for threads in sorted({r["threads"] for r in results}):
            rows = sorted((r for r in results if r["backend"] == backend and r["threads"] == threads),
                          key=lambda r: r["size"])
            sizes = [r["size"] for r in rows]
            style = "o-" if threads == 1 else "s--"
            label = f"{backend}, torch threads={threads}"
            for ax, key in ((ax_full, "rasterize"), (ax_ids, "ids")):
                ax.plot(sizes, [r[f"{key}_median_ms"] for r in rows], style, color=colours[backend], label=label)
                ax.plot(sizes, [r[f"{key}_min_ms"] for r in rows], "v", color=colours[backend], alpha=0.4)
        rows = sorted((r for r in results if r["backend"] == backend and "peak_rss_added_mb" in r),
                      key=lambda r: r["size"])
        ax_mem.plot([r["size"] for r in rows], [r["peak_rss_added_mb"] for r in rows], "o-",
                    color=colours[backend], label=backend)
    for ax in (ax_full, ax_ids, ax_mem):
        ax.set_xscale("log", base=2)
        ax.set_xticks(SIZES, [f"{s}²" for s in SIZES])
        ax.set_xlabel("image size")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in (ax_full, ax_ids):
        ax.set_yscale("log")
        ax.set_ylabel("ms per call (median; ▼ = min)")
    ax_full.set_title("rasterize(): visibility + differentiable barycentrics")
    ax_ids.set_title("visibility step only")
    ax_mem.set_ylabel("peak RSS added by the calls (MB)")
    ax_mem.set_title("memory")
    fig.suptitle("ICT head (52k triangles), shared 2-core CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch intra-op thread counts to time (memory is measured with the first)")
    parser.add_argument("--memory-worker", nargs=3, metavar=("BACKEND", "SIZE", "IDS_OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--timing-worker", nargs=2, metavar=("BACKENDS", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        backend, size, ids_out = args.memory_worker
        print(json.dumps(memory_worker(backend, int(size), 3, args.threads[0], ids_out)))
        return
    if args.timing_worker:
        names, size = args.timing_worker
        print(json.dumps(timing_worker(names.split(","), int(size), args.repeats, args.threads[0])))
        return

    import torch

    from invertavatar.render import available_backends

    backends = available_backends("cpu")
    if torch.cuda.is_available() and "nvdiffrast" in available_backends("cuda"):
        backends.append("nvdiffrast")
    results = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            rows = []
            for threads in args.threads:
                rows += run_worker(["--timing-worker", ",".join(backends), str(size), "--repeats", str(args.repeats),
                                    "--threads", str(threads)])
            ids = {}
            for backend in backends:
                ids_out = os.path.join(tmp, f"{backend}_{size}.npy")
                memory = run_worker(["--memory-worker", backend, str(size), ids_out, "--threads",
                                     str(args.threads[0])])
                ids[backend] = np.load(ids_out)
                memory["pixels_differing_from_torch"] = float((ids[backend] != ids["torch"]).mean())
                for row in rows:
                    if row["backend"] == backend and row["threads"] == args.threads[0]:
                        row.update(memory)
            for row in rows:
                print(f"{row['backend']:>10} {size:>5}² threads {row['threads']}  rasterize "
                      f"{row['rasterize_median_ms']:8.1f} ms (min {row['rasterize_min_ms']:.1f})  visibility "
                      f"{row['ids_median_ms']:8.1f} ms (min {row['ids_min_ms']:.1f})", flush=True)
            results.extend(rows)
    report = {
        "benchmark": "rasterizer", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": args.threads,
                    "llvmpipe_threads": os.environ.get("LP_NUM_THREADS", "default (one per CPU)"), "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
        "mesh": "ICT Face Model Light neutral, quads split into triangles, metres; frontal camera f = 1.5 × size, "
                "0.6 m away",
        "method": "timings: one process per size, backends' calls interleaved, after a warm-up; memory and first "
                  "call: one fresh process per backend and size",
        "results": results,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "rasterizer.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, OUT_DIR / "rasterizer.png")
    print(f"wrote {OUT_DIR / 'rasterizer.json'} and {OUT_DIR / 'rasterizer.png'}")


if __name__ == "__main__":
    main()
