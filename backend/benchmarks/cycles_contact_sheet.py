"""Cycles contact sheet: avatars imported through the add-on's own import and rendered by Blender under one rig.

    python backend/benchmarks/cycles_contact_sheet.py OUT.png PHOTO_OR_BUNDLE... [--views front,45,90,back]
        [--size 256] [--samples 16] [--bundles DIR] [--no-hair]

Each input is a photo (reconstructed first, with the ordinary job) or a ``NAME.avatar`` bundle. One row per input:
the photo | the views asked for (``front``, ``45``, ``90``, ``back``, ``smile``). The rig is fixed and documented
so sheets can be compared over time (docs/hair.md, "Looking at it"):

- camera: 85 mm lens, orbiting the head's centre at 0.85 m, the head and shoulder-length hair in frame;
- lights: three white sun lamps, so a surface's brightness does not depend on where the head sits: a key (45° to
  the subject's right, 30° up, strength 2.0, 8° wide), a fill (45° left, 10° up, 0.6) and a rim behind (35° up, 0.8);
  a white world at strength 0.25. A white diffuse surface facing the key renders at about 0.9 of its albedo × π;
  in practice a face renders close to its albedo's level;
- colour: Standard view transform, exposure 0, look None (what a texture artist checks albedo under);
- Cycles on the CPU, ``--samples`` samples with the denoiser off (what it shows is not smoothed over).

Blender runs in this process (the ``bpy`` module) with the extension installed into a temporary user folder,
exactly as the add-on's tests install it. Devset pictures made with this script are for looking at, never for the
repository.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="invertavatar-sheet-"))
REPO = Path(__file__).resolve().parents[2]
VIEWS = {"front": 0.0, "45": 45.0, "90": 90.0, "back": 180.0, "smile": 0.0}
LABEL = 18


def reconstruct(photo: Path, out_dir: Path) -> Path:
    """The photo's bundle through the ordinary job (reused when already there)."""
    from invertavatar.pipeline import JobSpec, run_job

    target = out_dir / f"{photo.stem}.avatar"
    if not target.exists():
        run_job(JobSpec([photo], target))
    return target


def _install_addon(tmp: Path):
    sys.path.insert(0, str(REPO / "tests" / "blender_addon"))
    from addon_env import addon_module, install_addon  # the extension zip, installed as an artist would

    install_addon(tmp)
    return addon_module


def cycles_scene(bpy, size: int, samples: int, world_strength: float):
    """The current scene set to Cycles on the CPU, no denoiser, the Standard view transform at exposure 0, a square
    picture of ``size`` and a uniform white world of ``world_strength``; returns the scene."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    world = bpy.data.worlds.new("neutral") if scene.world is None else scene.world
    scene.world = world
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    background.inputs["Strength"].default_value = world_strength
    return scene


def _rig(bpy, centre, size: int, samples: int) -> None:
    scene = cycles_scene(bpy, size, samples, 0.25)
    from mathutils import Vector

    for name, azimuth, elevation, strength in (("key", -45, 30, 2.0), ("fill", 45, 10, 0.6), ("rim", 180, 35, 0.8)):
        light = bpy.data.lights.new(name, "SUN")
        light.energy = strength
        light.angle = math.radians(8.0)
        obj = bpy.data.objects.new(name, light)
        scene.collection.objects.link(obj)
        a, e = math.radians(azimuth), math.radians(elevation)
        # Blender axes: the face looks down -Y; azimuth 0 is in front of the face, positive to the subject's left.
        direction = Vector((math.sin(a) * math.cos(e), -math.cos(a) * math.cos(e), math.sin(e)))
        obj.location = Vector(centre) + direction
        obj.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    camera = bpy.data.cameras.new("camera")
    camera.lens = 85.0
    obj = bpy.data.objects.new("camera", camera)
    scene.collection.objects.link(obj)
    scene.camera = obj


def _aim(bpy, centre, azimuth: float) -> None:
    from mathutils import Vector

    camera = bpy.context.scene.camera
    a = math.radians(azimuth)
    camera.location = Vector(centre) + 0.85 * Vector((math.sin(a), -math.cos(a), 0.03))
    camera.rotation_euler = (Vector(centre) - camera.location).to_track_quat("-Z", "Y").to_euler()


def render_bundle(bpy, addon_module, bundle_path: Path, views: list[str], size: int, samples: int,
                  hair: bool) -> list[np.ndarray]:
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.invertavatar.import_hair = hair
    bundle = addon_module("core.bundle").read_bundle(bundle_path)
    avatar = addon_module("scene.avatar").build_avatar(bpy.context, bundle, "Avatar", animate=False)
    head = bpy.data.objects[avatar.mesh_object]
    local = np.zeros(len(head.data.vertices) * 3, np.float32)
    head.data.vertices.foreach_get("co", local)
    matrix = np.array(head.matrix_world)
    corners = local.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    top = corners[:, 2].max()
    centre = (0.0, float(np.median(corners[:, 1])), float(top - 0.12))
    _rig(bpy, centre, size, samples)
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for view in views:
            keys = head.data.shape_keys.key_blocks if head.data.shape_keys else {}
            for name in ("mouthSmileLeft", "mouthSmileRight"):
                if name in keys:
                    keys[name].value = 1.0 if view == "smile" else 0.0
            _aim(bpy, centre, VIEWS[view])
            path = Path(tmp) / f"{view}.png"
            bpy.context.scene.render.filepath = str(path)
            bpy.ops.render.render(write_still=True)
            images.append(np.asarray(Image.open(path).convert("RGB")))
    return images


def _tile(image: np.ndarray | Image.Image, size: int) -> np.ndarray:
    image = image if isinstance(image, Image.Image) else Image.fromarray(image)
    image = image.convert("RGB")
    image.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("inputs", type=Path, nargs="+")
    parser.add_argument("--views", default="front,45,90,back")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--bundles", type=Path, help="where photos' bundles are written (default: a temp folder)")
    parser.add_argument("--no-hair", action="store_true", help="import without hair (to compare)")
    args = parser.parse_args(argv)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        parser.error(f"unknown views {unknown}; use {', '.join(VIEWS)}")
    bundles_dir = args.bundles or Path(tempfile.mkdtemp(prefix="invertavatar-bundles-"))
    bundles_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for item in args.inputs:
        started = time.perf_counter()
        try:
            bundle = item if item.is_dir() else reconstruct(item, bundles_dir)
            pairs.append((item, bundle, None))
        except Exception as exc:  # a failing photo shows its error in its row
            pairs.append((item, None, str(exc)))
        print(f"{item.name}: bundle in {time.perf_counter() - started:.1f} s", flush=True)
    import bpy

    addon_module = _install_addon(Path(tempfile.mkdtemp(prefix="invertavatar-ext-")))
    rows = []
    for item, bundle, error in pairs:
        photo = item if not item.is_dir() else None
        first = _tile(Image.open(photo), args.size) if photo else np.full((args.size, args.size, 3), 255, np.uint8)
        if bundle is None:
            tiles = [np.full((args.size, args.size, 3), (250, 225, 225), np.uint8) for _ in views]
            print(f"{item.name}: {error}")
        else:
            started = time.perf_counter()
            tiles = [_tile(i, args.size) for i in render_bundle(bpy, addon_module, bundle, views, args.size,
                                                                args.samples, not args.no_hair)]
            print(f"{item.name}: rendered {len(views)} views in {time.perf_counter() - started:.1f} s", flush=True)
        row = Image.fromarray(np.concatenate([first] + tiles, 1))
        labelled = Image.new("RGB", (row.width, row.height + LABEL), (255, 255, 255))
        labelled.paste(row, (0, LABEL))
        ImageDraw.Draw(labelled).text((4, 2), item.name + (f"  ({error})" if error else ""), fill=(0, 0, 0))
        rows.append(np.asarray(labelled))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
