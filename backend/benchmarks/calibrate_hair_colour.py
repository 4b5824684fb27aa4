"""Measure the colour Blender's Principled Hair BSDF gives a head of hair, per melanin and redness (Cycles).

    python backend/benchmarks/calibrate_hair_colour.py [--samples 32]

A thick curtain of straight strands (6,000 strands of 40 µm radius, 2 cm deep, so no background shows through) is
rendered by Cycles under a uniform white world of strength 1, the light under which a white diffuse surface renders
at 1: what the curtain then shows is the hair's colour on the same scale as a skin albedo. For each (melanin,
redness) on a grid the table keeps the same statistic the hair stage takes from a photo's hair pixels
(hair/colour.py `hair_albedo`): the median of the pixels between the 15th and 60th lightness percentile, linear.
Writes backend/invertavatar/hair/data/principled_hair_cycles.json, which `hair/colour.py` fits against. The
shader's other inputs stay at the values the hair stage writes (roughness 0.3, radial roughness 0.3, coat 0.1,
IOR 1.55, no random colour).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="invertavatar-calibrate-"))
OUT = Path(__file__).resolve().parents[1] / "invertavatar" / "hair" / "data" / "principled_hair_cycles.json"
MELANIN = [round(m, 3) for m in list(np.arange(0.0, 0.9, 0.05)) + [0.9, 0.925, 0.95, 0.97, 0.985, 0.995]]
REDNESS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
SIZE = 48
STRANDS, POINTS = 6000, 8


def _scene(bpy, samples: int):
    from cycles_contact_sheet import cycles_scene  # the contact sheet's Cycles settings (this folder)

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = cycles_scene(bpy, SIZE, samples, 1.0)
    scene.render.image_settings.file_format = "OPEN_EXR"
    rng = np.random.default_rng(0)
    curves = bpy.data.hair_curves.new("curtain")
    curves.add_curves([POINTS] * STRANDS)
    points = np.zeros((STRANDS, POINTS, 3), np.float32)
    points[..., 0] = rng.uniform(-0.05, 0.05, STRANDS)[:, None]
    points[..., 1] = rng.uniform(-0.01, 0.01, STRANDS)[:, None]
    points[..., 2] = np.linspace(-0.06, 0.06, POINTS)[None]
    curves.position_data.foreach_set("vector", points.reshape(-1))
    if "radius" not in curves.attributes:
        curves.attributes.new("radius", "FLOAT", "POINT")
    curves.attributes["radius"].data.foreach_set("value", np.full(STRANDS * POINTS, 4e-5, np.float32))
    obj = bpy.data.objects.new("curtain", curves)
    scene.collection.objects.link(obj)
    material = bpy.data.materials.new("hair")
    material.use_nodes = True
    tree = material.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    bsdf = tree.nodes.new("ShaderNodeBsdfHairPrincipled")
    bsdf.parametrization = "MELANIN"
    for name, value in (("Roughness", 0.3), ("Radial Roughness", 0.3), ("Coat", 0.1), ("IOR", 1.55),
                        ("Random Color", 0.0), ("Random Roughness", 0.0)):
        bsdf.inputs[name].default_value = value
    tree.links.new(bsdf.outputs[0], output.inputs["Surface"])
    curves.materials.append(material)
    camera = bpy.data.cameras.new("camera")
    camera.type = "ORTHO"
    camera.ortho_scale = 0.06
    camera_object = bpy.data.objects.new("camera", camera)
    scene.collection.objects.link(camera_object)
    scene.camera = camera_object
    camera_object.location = (0.0, -0.5, 0.0)
    camera_object.rotation_euler = (math.pi / 2, 0.0, 0.0)
    return scene, bsdf


def _body(bpy, path: str) -> list[float]:
    image = bpy.data.images.load(path)
    pixels = np.array(image.pixels[:]).reshape(SIZE, SIZE, 4)[SIZE // 4:-SIZE // 4, SIZE // 4:-SIZE // 4, :3]
    bpy.data.images.remove(image)
    pixels = pixels.reshape(-1, 3)
    lightness = pixels @ np.array([0.2126, 0.7152, 0.0722])
    low, high = np.percentile(lightness, [15, 60])
    return np.median(pixels[(lightness >= low) & (lightness <= high)], axis=0).round(5).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    import bpy

    started = time.perf_counter()
    scene, bsdf = _scene(bpy, args.samples)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for melanin in MELANIN:
            for redness in REDNESS:
                bsdf.inputs["Melanin"].default_value = melanin
                bsdf.inputs["Melanin Redness"].default_value = redness
                scene.render.filepath = str(Path(tmp) / "swatch.exr")
                bpy.ops.render.render(write_still=True)
                table.append({"melanin": melanin, "redness": redness, "colour": _body(bpy, scene.render.filepath)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "what": "Cycles render of a head of Principled Hair BSDF strands (Melanin mode) under a uniform white world "
                "of strength 1: the median linear colour of the 15th-60th lightness percentile",
        "blender": bpy.app.version_string, "samples": args.samples,
        "shader": {"roughness": 0.3, "radial_roughness": 0.3, "coat": 0.1, "ior": 1.55},
        "table": table, "seconds": round(time.perf_counter() - started, 1)}, indent=1))
    print(f"wrote {OUT} ({len(table)} swatches)")


if __name__ == "__main__":
    main()
