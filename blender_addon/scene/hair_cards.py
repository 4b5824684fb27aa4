"""Hair cards for FBX/glTF: the avatar's guide curves as textured ribbon meshes skinned like the skin beneath.

Neither format can carry Blender's hair curves, so an export replaces them with cards: one ribbon per guide,
as wide as the guides are apart, with an alpha texture of many strands in the hair's colour. Each card takes the
bone weights of the head vertex nearest its root, so scalp cards move with the head bone and beard cards with
the jaw. The cards exist only while the export runs (``export.py`` removes them), so the .blend stays as it was.
"""

from __future__ import annotations

import json

import bpy
import numpy as np
from mathutils import kdtree

from ..core.hair_cards import melanin_to_rgb, ribbons, root_spacing, strand_texture
from .hair import ROOT_NORMAL, hair_objects

CARD_WIDTH_PER_SPACING = 2.2  # neighbouring cards overlap, so the scalp shows through neither card nor gap
MIN_CARD_WIDTH = 0.004  # metres


def _guides(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, curve offsets, root normals) of a hair object's own guide curves (not the densified children)."""
    data = obj.data
    points = np.empty(len(data.points) * 3, np.float32)
    data.attributes["position"].data.foreach_get("vector", points)
    offsets = np.empty(len(data.curves) + 1, np.int32)
    data.curve_offset_data.foreach_get("value", offsets)
    normals = np.zeros((len(data.curves), 3), np.float32)
    if ROOT_NORMAL in data.attributes:
        data.attributes[ROOT_NORMAL].data.foreach_get("vector", normals.ravel())
    else:  # hair groomed by hand in Blender: fall back to "outwards from the head's middle"
        roots = points.reshape(-1, 3)[offsets[:-1]]
        normals = roots - roots.mean(axis=0)
    return points.reshape(-1, 3), offsets, normals


def _card_colours(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """Linear RGB at the root and at the tip: the measured colours hair.json gives, which are what the Principled
    Hair BSDF with its fitted parameters renders (the backend fits them to Cycles' own measured output)."""
    shading = json.loads(obj.get("invertavatar_hair_shading", "{}") or "{}")
    root = np.asarray(shading.get("root_colour") or melanin_to_rgb(shading.get("melanin", 0.5),
                                                                    shading.get("melanin_redness", 0.3)), float)
    tip = shading.get("tip_colour")
    return root, (np.asarray(tip, float) if tip else root)


def _strand_image(name: str, root_rgb: np.ndarray, tip_rgb: np.ndarray) -> bpy.types.Image:
    pixels = strand_texture(256, 512, strands=64, root_rgb=root_rgb, tip_rgb=tip_rgb)
    image = bpy.data.images.new(name, 256, 512, alpha=True)
    image.alpha_mode = "STRAIGHT"
    image.pixels.foreach_set(pixels.ravel())  # row 0 is the bottom in Blender, as it is v = 0 (the root) here
    image.file_format = "PNG"
    image.pack()  # a generated image exists only in memory; packed, the exporters can write it
    return image


def _card_material(name: str, image: bpy.types.Image) -> bpy.types.Material:
    """Principled BSDF with the strand texture as Base Color and Alpha (glTF: alphaMode, double-sided)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.45
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.location = (-400, 200)
    links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    links.new(texture.outputs["Alpha"], bsdf.inputs["Alpha"])
    if hasattr(material, "surface_render_method"):  # Blender 4.2+
        material.surface_render_method = "BLENDED"
    else:
        material.blend_method = "BLEND"
    material.use_backface_culling = False  # a card is seen from both sides
    return material


def _head_weights(head: bpy.types.Object, vertices: list[int]) -> list[dict[str, float]]:
    """Bone weights (vertex group name -> weight) of the given head vertices."""
    names = [g.name for g in head.vertex_groups]
    return [{names[g.group]: g.weight for g in head.data.vertices[v].groups if g.weight > 0} for v in vertices]


def _skin(cards: bpy.types.Object, head: bpy.types.Object, rig: bpy.types.Object, roots: np.ndarray,
          root_index: np.ndarray) -> None:
    """Give every card the weights of the head vertex nearest its root and an Armature modifier."""
    tree = kdtree.KDTree(len(head.data.vertices))
    coords = np.empty(len(head.data.vertices) * 3, np.float32)
    head.data.vertices.foreach_get("co", coords)
    for i, co in enumerate(coords.reshape(-1, 3)):
        tree.insert(co, i)
    tree.balance()
    nearest = [tree.find(root)[1] for root in roots]
    weights = _head_weights(head, nearest)
    by_card = np.argsort(root_index, kind="stable")
    bounds = np.searchsorted(root_index[by_card], np.arange(len(roots) + 1))
    groups: dict[str, bpy.types.VertexGroup] = {}
    for card, card_weights in enumerate(weights):
        members = by_card[bounds[card]:bounds[card + 1]].tolist()
        for bone, weight in card_weights.items():
            if bone not in groups:
                groups[bone] = cards.vertex_groups.new(name=bone)
            groups[bone].add(members, weight, "REPLACE")
    modifier = cards.modifiers.new(name="Armature", type="ARMATURE")
    modifier.object = rig
    modifier.use_vertex_groups = True


def build_hair_cards(head: bpy.types.Object, rig: bpy.types.Object | None,
                     created: list) -> list[bpy.types.Object]:
    """One card mesh object per visible hair object of ``head``; new IDs go to ``created`` (for removal)."""
    objects = []
    for hair in hair_objects(head):
        if hair.hide_render or len(hair.data.curves) == 0:
            continue  # hidden hair (the Hair toggle off) is not exported either
        name = f"{hair.name}_cards"
        points, offsets, normals = _guides(hair)
        roots = points[offsets[:-1]]
        width = max(MIN_CARD_WIDTH, CARD_WIDTH_PER_SPACING * root_spacing(roots))
        card = ribbons(points, offsets, normals, width)
        mesh = bpy.data.meshes.new(name)
        created.append(mesh)
        mesh.vertices.add(len(card.positions))
        mesh.vertices.foreach_set("co", card.positions.ravel())
        mesh.loops.add(card.faces.size)
        mesh.loops.foreach_set("vertex_index", card.faces.ravel())
        mesh.polygons.add(len(card.faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, card.faces.size, 4, dtype=np.int32))
        mesh.uv_layers.new(name="UVMap").data.foreach_set("uv", card.loop_uv.ravel())
        mesh.update(calc_edges=True)
        mesh.validate(clean_customdata=False)
        image = _strand_image(f"{name}_strands", *_card_colours(hair))
        created.append(image)
        material = _card_material(name, image)
        created.append(material)
        mesh.materials.append(material)
        obj = bpy.data.objects.new(name, mesh)
        created.append(obj)
        for collection in head.users_collection:
            collection.objects.link(obj)
        obj.matrix_world = hair.matrix_world  # the guides live in the hair object's space
        if rig is not None:
            _skin(obj, head, rig, roots, card.root_index)
            obj.parent = rig
            obj.matrix_parent_inverse = rig.matrix_world.inverted()
        objects.append(obj)
    return objects
