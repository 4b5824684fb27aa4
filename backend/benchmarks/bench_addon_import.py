"""Benchmark: the Blender add-on building a full ICT avatar and keying 1,000 frames of animation (headless bpy).

Imports a bundle of the ICT Face Model (26,719 vertices, 52 ARKit shape keys, 2048² albedo + coverage) through
the installed extension, step by step (read + verify, mesh, shape keys, material, armature, skinning) and as the
whole ``invertavatar.import_bundle`` operator; then applies a 1,000-frame clip (52 shape-key curves, head and eye
bones). Goals: import ≤ 1 s, 1,000 frames ≤ 1 s. Writes docs/benchmarks/addon_import.json and .png.

    PYTHONPATH=backend .venv/bin/python backend/benchmarks/bench_addon_import.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="invertavatar-bench-"))
sys.path.insert(0, str(REPO / "tests" / "blender_addon"))  # the ICT bundle writer and the extension installer


def _timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def measure(repeats: int, frames: int, work: Path) -> dict:
    import bpy

    import ict_bundle
    from addon_env import addon_module, install_addon

    install_addon(work)
    bundle_dir = ict_bundle.write_ict_bundle(work / "ict.avatar", texture_size=2048)
    tracks = ict_bundle.synthetic_tracks(frames, fps=30.0)
    (work / "tracks.json").write_text(json.dumps(tracks))
    read_bundle = addon_module("core.bundle").read_bundle
    read_tracks = addon_module("core.bundle").read_tracks
    mesh_mod, rig_mod = addon_module("scene.mesh"), addon_module("scene.rig")
    material_mod, anim_mod = addon_module("scene.material"), addon_module("scene.animation")
    steps: dict[str, list[float]] = {k: [] for k in (
        "read_bundle", "mesh", "shape_keys", "material", "armature", "skinning", "import_operator_total",
        "read_tracks", "keyframes_1000_frames", "apply_tracks_operator_total")}
    for _ in range(repeats):
        bpy.ops.wm.read_homefile(use_empty=True)
        context = bpy.context
        t, bundle = _timed(read_bundle, bundle_dir)
        steps["read_bundle"].append(t)
        t, mesh = _timed(mesh_mod.build_mesh, bundle, "bench")
        steps["mesh"].append(t)
        head = bpy.data.objects.new("bench", mesh)
        context.scene.collection.objects.link(head)
        steps["shape_keys"].append(_timed(mesh_mod.add_shape_keys, head, bundle)[0])
        t, material = _timed(material_mod.build_material, "bench", bundle.textures)
        steps["material"].append(t)
        t, rig = _timed(rig_mod.build_armature, bundle, "bench_rig", context.scene.collection, context)
        steps["armature"].append(t)
        steps["skinning"].append(_timed(rig_mod.add_skinning, head, rig, bundle)[0])
        t, parsed = _timed(read_tracks, work / "tracks.json")
        steps["read_tracks"].append(t)
        steps["keyframes_1000_frames"].append(
            _timed(anim_mod.apply_tracks, context.scene, head, rig, parsed, "bench")[0])

        bpy.ops.wm.read_homefile(use_empty=True)
        bpy.context.scene.invertavatar.animate_on_import = False
        steps["import_operator_total"].append(
            _timed(lambda: bpy.ops.invertavatar.import_bundle(filepath=str(bundle_dir / "manifest.json")))[0])
        steps["apply_tracks_operator_total"].append(
            _timed(lambda: bpy.ops.invertavatar.apply_tracks(filepath=str(work / "tracks.json")))[0])
        head = bpy.context.view_layer.objects.active
        assert len(head.data.shape_keys.key_blocks) == 53 and len(head.data.vertices) == 26719
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "runs": v}
            for k, v in steps.items()}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    medians = [results[n]["median_s"] * 1000 for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = ["tab:orange" if n.endswith("total") else "tab:blue" for n in names]
    ax.barh(names, medians, color=colours)
    ax.axvline(1000, color="red", linestyle="--", label="goal: 1 s")
    for y, value in enumerate(medians):
        ax.text(value, y, f" {value:.0f} ms", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("median time (ms)")
    ax.set_title("Add-on: import of a full ICT avatar (26,719 vertices, 52 keys, 2k texture)\nand 1,000 frames "
                 "of 52-key animation (headless bpy)", fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    import bpy

    with tempfile.TemporaryDirectory(prefix="invertavatar-bench-") as tmp:
        results = measure(args.repeats, args.frames, Path(tmp))
    report = {
        "benchmark": "addon_import", "blender": bpy.app.version_string, "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs", "repeats": args.repeats,
        "avatar": {"vertices": 26719, "shape_keys": 52, "texture": "2048x2048 albedo + coverage"},
        "animation_frames": args.frames, "goals_s": {"import_operator_total": 1.0, "apply_tracks_operator_total": 1.0},
        "results": results,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "addon_import.json").write_text(json.dumps(report, indent=2))
    plot(results, OUT_DIR / "addon_import.png")
    for name, value in results.items():
        print(f"{name:30s} {value['median_s'] * 1000:8.1f} ms (min {value['min_s'] * 1000:.1f})")


if __name__ == "__main__":
    main()
