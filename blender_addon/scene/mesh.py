"""Mesh, UVs and ARKit shape keys from a bundle, written with ``foreach_set`` (no per-vertex Python loops)."""

from __future__ import annotations

import bpy
import numpy as np

from ..core.arkit import ARKIT_NAMES
from ..core.axes import points_to_blender
from ..core.bundle import Bundle


def polygon_layout(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flattened loop indices, loop starts and sizes of (F,4) polygons padded with −1."""
    valid = faces >= 0
    sizes = valid.sum(axis=1).astype(np.int32)
    starts = np.zeros(len(faces), dtype=np.int32)
    np.cumsum(sizes[:-1], out=starts[1:])
    return valid, starts, sizes


def build_mesh(bundle: Bundle, name: str) -> bpy.types.Mesh:
    """A mesh datablock in Blender axes with the bundle's polygons, UV map and a per-polygon material index."""
    verts = points_to_blender(bundle.vertices)
    valid, starts, sizes = polygon_layout(bundle.faces)
    loops = bundle.faces[valid]
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(len(loops))
    mesh.loops.foreach_set("vertex_index", loops.astype(np.int32))
    mesh.polygons.add(len(starts))
    mesh.polygons.foreach_set("loop_start", starts)
    uv_layer = mesh.uv_layers.new(name="UVMap")
    uv_layer.data.foreach_set("uv", bundle.uv[bundle.face_uv[valid]].astype(np.float32).ravel())
    material_ids = mesh.attributes.new("invertavatar_part", "INT", "FACE")
    material_ids.data.foreach_set("value", bundle.face_material.astype(np.int32))
    mesh.update(calc_edges=True)
    mesh.validate(clean_customdata=False)
    return mesh


def add_shape_keys(obj: bpy.types.Object, bundle: Bundle) -> None:
    """Basis plus the 52 ARKit keys (Apple's order); each key holds the basis plus its personalised delta."""
    basis = points_to_blender(bundle.vertices)
    obj.shape_key_add(name="Basis", from_mix=False)
    deltas = points_to_blender(bundle.expression_deltas)
    for i, name in enumerate(ARKIT_NAMES):
        block = obj.shape_key_add(name=name, from_mix=False)
        # ``points`` is the fast foreach path (measured: 52 keys of 26,719 vertices in < 10 ms, against 0.37 s
        # through ``data``); ``data`` remains for versions without it.
        points = block.points if hasattr(block, "points") else block.data
        points.foreach_set("co", (basis + deltas[i]).ravel())
        block.slider_min = 0.0
        block.slider_max = 1.0
        block.value = 0.0  # Blender 5.0 creates new keys at 1.0: the avatar must start neutral
    # Shapes the head model lacks keep their name (all 52 always exist) but are listed, so the UI can say so.
    obj["invertavatar_missing_shapes"] = [n for n, ok in zip(ARKIT_NAMES, bundle.expression_available) if not ok]
    obj.data.shape_keys.use_relative = True
