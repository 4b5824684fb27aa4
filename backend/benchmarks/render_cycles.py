"""Render avatars as an artist would see them: Cycles, through the add-on's import, under one fixed neutral rig.

    python backend/benchmarks/render_cycles.py OUT_DIR BUNDLE.avatar [BUNDLE.avatar ...] [--samples 24] [--size 384]

Each bundle is imported with the add-on's `import_bundle` operator (installed and enabled in-process, as the tests
do) and rendered from the front and from 45° to the subject's left, with:
- a key light (area, 0.3 m, 18 W, 45° to the subject's right and 30° up, 1.1 m away), a fill (area, 0.5 m, 6 W, 50°
  to the left, at eye height) and a rim light (area, 0.3 m, 12 W, behind and above), all white (6500 K-ish neutral);
- a uniform grey world of 0.05 and view transform **Standard**, look None, exposure 0, gamma 1;
- Cycles on the CPU, ``--samples`` samples (denoised with OpenImageDenoise when available), ``--size`` pixels square.
Writes OUT_DIR/NAME_front.png and NAME_45.png. Renders of devset photos stay out of the repository.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _addon():
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="ia-blender-"))
    sys.path.insert(0, str(ROOT / "tests" / "blender_addon"))
    from addon_env import install_addon  # the tests' installer: the add-on as an extension zip

    return install_addon(Path(tempfile.mkdtemp(prefix="ia-ext-")))


def _light(bpy, name: str, power: float, size: float, location, target) -> None:
    from mathutils import Vector

    data = bpy.data.lights.new(name, "AREA")
    data.energy, data.size, data.color = power, size, (1.0, 1.0, 1.0)
    light = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(light)
    light.location = location
    light.rotation_euler = (Vector(target) - Vector(location)).to_track_quat("-Z", "Y").to_euler()


def _rig(bpy, centre) -> None:
    cx, cy, cz = centre

    def around(azimuth: float, elevation: float, distance: float):
        a, e = math.radians(azimuth), math.radians(elevation)
        # Azimuth 0 = in front of the face (−Y); positive towards the subject's left (+X).
        return (cx + distance * math.sin(a) * math.cos(e), cy - distance * math.cos(a) * math.cos(e),
                cz + distance * math.sin(e))

    _light(bpy, "Key", 18.0, 0.3, around(-45, 30, 1.1), centre)
    _light(bpy, "Fill", 6.0, 0.5, around(50, 0, 1.2), centre)
    _light(bpy, "Rim", 12.0, 0.3, around(180, 45, 1.0), centre)


def render(bundle: Path, out: Path, samples: int, size: int) -> list[Path]:
    import bpy
    from mathutils import Vector

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    bpy.context.scene.invertavatar.animate_on_import = False
    assert bpy.ops.invertavatar.import_bundle(filepath=str(bundle / "manifest.json")) == {"FINISHED"}
    head = next(o for o in scene.objects if o.type == "MESH" and o.data.shape_keys is not None)
    corners = [head.matrix_world @ Vector(c) for c in head.bound_box]
    low = Vector([min(c[i] for c in corners) for i in range(3)])
    high = Vector([max(c[i] for c in corners) for i in range(3)])
    centre = (low + high) / 2
    centre.z = low.z + 0.62 * (high.z - low.z)  # the eyes, not the middle of head and neck
    _rig(bpy, tuple(centre))
    world = bpy.data.worlds.new("Grey")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.05, 0.05, 0.05, 1.0)
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
    camera_data = bpy.data.cameras.new("Camera")
    camera_data.lens = 85.0
    camera = bpy.data.objects.new("Camera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    written = []
    for label, azimuth in (("front", 0.0), ("45", 45.0)):
        a = math.radians(azimuth)
        camera.location = centre + Vector((0.85 * math.sin(a), -0.85 * math.cos(a), 0.0))
        camera.rotation_euler = (centre - camera.location).to_track_quat("-Z", "Y").to_euler()
        scene.render.filepath = str(out / f"{bundle.stem}_{label}.png")
        bpy.ops.render.render(write_still=True)
        written.append(Path(scene.render.filepath))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("bundles", type=Path, nargs="+")
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--size", type=int, default=384)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    _addon()
    for bundle in args.bundles:
        for path in render(bundle, args.out, args.samples, args.size):
            print(path)


if __name__ == "__main__":
    main()
