"""The bundle's hair as Blender's own hair: a Curves object per group on the head surface, styled by Blender's
procedural hair node groups, deformed with the head, shaded by the Principled Hair BSDF.

The setup is what *Add › Curves › Empty Hair* makes (surface, UV map, ``surface_uv_coordinate``, a *Surface Deform*
modifier, parented to the surface) with the bundle's guides in it, so the artist can keep grooming it with
Blender's tools: the hair follows the rig's head and jaw because it follows the head mesh's deformation.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import bpy
import numpy as np

from ..core.axes import points_to_blender
from ..core.bundle import HAIR_GROUPS, Bundle, Hair, HairShading
from ..core.hair_cards import polygon_normals, root_spacing

ASSET_FILE = "procedural_hair_node_assets.blend"
INTERPOLATE, CLUMP, FRIZZ = "Interpolate Hair Curves", "Clump Hair Curves", "Frizz Hair Curves"
SURFACE_DEFORM = "Surface Deform"
UV_MAP = "UVMap"  # scene/mesh.py's UV layer: the one the roots' root_uv refer to
ROOT_NORMAL = "invertavatar_root_normal"  # curve attribute: the skin's normal at the root (lays the cards flat)
HAIR_KEYS = ("invertavatar_hair_group", "invertavatar_hair_shading", "invertavatar_bundle_density")


def hair_asset_path() -> Path | None:
    """Blender's bundled procedural hair node groups (Blender 3.5+), or None when this Blender has none."""
    # system_resource(path=...) answers '' for a file, so ask for its folder.
    folder = bpy.utils.system_resource("DATAFILES", path="assets/nodes")
    path = Path(folder) / ASSET_FILE if folder else None
    return path if path is not None and path.is_file() else None


def density_mask_name(group: str) -> str:
    """The head mesh's float point attribute that is 1 where ``group`` grows (the interpolation's density mask)."""
    return f"invertavatar_hair_{group}"


def hair_objects(head: bpy.types.Object | None) -> list[bpy.types.Object]:
    """The avatar's hair Curves objects (children of its head mesh)."""
    if head is None:
        return []
    return [c for c in head.children if c.type == "CURVES" and c.invertavatar.role == "HAIR"]


def _append_node_groups(names: tuple[str, ...]) -> dict[str, bpy.types.NodeTree]:
    """Blender's own groups by name, appended once per .blend (later imports reuse the appended copies)."""
    found = {g["invertavatar_asset"]: g for g in bpy.data.node_groups if g.get("invertavatar_asset") in names}
    missing = [n for n in names if n not in found]
    path = hair_asset_path()
    if missing and path is not None:
        with bpy.data.libraries.load(str(path), link=False) as (source, target):
            target.node_groups = [n for n in missing if n in source.node_groups]
        for group in target.node_groups:
            if group is not None:
                group["invertavatar_asset"] = next(n for n in missing if group.name.startswith(n))
                found[group["invertavatar_asset"]] = group
    return found


def _surface_deform_group() -> bpy.types.NodeTree:
    """The node group *Empty Hair* puts on new hair: Deform Curves on Surface, nothing else."""
    for group in bpy.data.node_groups:
        if group.get("invertavatar_asset") == SURFACE_DEFORM:
            return group
    group = bpy.data.node_groups.new(SURFACE_DEFORM, "GeometryNodeTree")
    group["invertavatar_asset"] = SURFACE_DEFORM
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    if hasattr(group, "is_modifier"):
        group.is_modifier = True
    nodes = group.nodes
    source, deform, sink = (nodes.new("NodeGroupInput"), nodes.new("GeometryNodeDeformCurvesOnSurface"),
                            nodes.new("NodeGroupOutput"))
    source.location, deform.location, sink.location = (-300, 0), (0, 0), (300, 0)
    group.links.new(source.outputs[0], deform.inputs[0])
    group.links.new(deform.outputs[0], sink.inputs[0])
    return group


def _set_input(modifier: bpy.types.Modifier, name: str, value=None, attribute: str | None = None) -> None:
    """Set a Geometry Nodes modifier input by its interface name (identifiers differ between group versions).

    ``attribute`` feeds a field input from a named attribute instead of a constant. Geometry sockets are skipped:
    Interpolate Hair Curves has a Geometry and an Object input both called *Surface*, and only the object is set.
    """
    for item in modifier.node_group.interface.items_tree:
        if (item.item_type == "SOCKET" and item.in_out == "INPUT" and item.name == name
                and item.socket_type != "NodeSocketGeometry"):
            if attribute is not None:
                modifier[f"{item.identifier}_use_attribute"] = True
                modifier[f"{item.identifier}_attribute_name"] = attribute
            else:
                modifier[item.identifier] = value
            return
    raise KeyError(f"{modifier.node_group.name} has no input {name!r}")


def _modifier(obj: bpy.types.Object, name: str, group: bpy.types.NodeTree) -> bpy.types.Modifier:
    modifier = obj.modifiers.new(name=name, type="NODES")
    modifier.node_group = group
    return modifier


def density_per_m2(strands_per_cm2: float) -> float:
    """Interpolate Hair Curves' *Density* is strands per square Blender unit (m²)."""
    return float(strands_per_cm2) * 1e4


def set_hair_density(obj: bpy.types.Object, strands_per_cm2: float) -> bool:
    """Point a hair object's interpolation at a density (0 = the bundle's own); False if it has none."""
    modifier = obj.modifiers.get(INTERPOLATE)
    if modifier is None or modifier.node_group is None:
        return False
    density = strands_per_cm2 if strands_per_cm2 > 0 else float(obj.get("invertavatar_bundle_density", 0.0))
    _set_input(modifier, "Density", density_per_m2(density))
    obj.update_tag()
    return True


def _style(obj: bpy.types.Object, head: bpy.types.Object, groups: dict[str, bpy.types.NodeTree],
           density: float, spacing: float, group_name: str) -> None:
    """Densify the guides on the head's own surface, then clump and frizz the result a little."""
    interpolate = _modifier(obj, INTERPOLATE, groups[INTERPOLATE])
    _set_input(interpolate, "Surface", head)
    _set_input(interpolate, "Surface UV Map", attribute=UV_MAP)
    # Roots are spread over the undeformed head (the surface's rest_position); Surface Deform, last, moves them.
    _set_input(interpolate, "Surface Rest Position", True)
    _set_input(interpolate, "Part by Mesh Islands", False)  # ICT's scalp spans UV islands (face, back of head)
    _set_input(interpolate, "Density", density_per_m2(density))
    _set_input(interpolate, "Density Mask", attribute=density_mask_name(group_name))
    if CLUMP in groups:
        clump = _modifier(obj, CLUMP, groups[CLUMP])
        _set_input(clump, "Factor", 0.35)
        _set_input(clump, "Existing Guide Map", False)
        _set_input(clump, "Guide Distance", max(spacing, 1e-3))  # one clump per guide's neighbourhood
    if FRIZZ in groups:
        frizz = _modifier(obj, FRIZZ, groups[FRIZZ])
        _set_input(frizz, "Factor", 0.25 if group_name == "scalp" else 0.5)
        _set_input(frizz, "Distance", 0.002)


def build_hair_material(name: str, shading: HairShading) -> bpy.types.Material:
    """Principled Hair BSDF (Chiang, Melanin), root → tip melanin along the strand (Curves Info › Intercept)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:  # Blender before 5.0 makes node trees on request only
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    for node in [n for n in nodes if n.type != "OUTPUT_MATERIAL"]:
        nodes.remove(node)
    output = next((n for n in nodes if n.type == "OUTPUT_MATERIAL"), None) or nodes.new("ShaderNodeOutputMaterial")
    output.location = (300, 0)
    bsdf = nodes.new("ShaderNodeBsdfHairPrincipled")
    bsdf.name = bsdf.label = "Hair BSDF"
    bsdf.parametrization = "MELANIN"
    if hasattr(bsdf, "model"):
        bsdf.model = "CHIANG"  # the model hair.json's parameters are fitted for
    values = {"Melanin": shading.melanin, "Melanin Redness": shading.melanin_redness,
              "Tint": (*shading.tint, 1.0), "Roughness": shading.roughness,
              "Radial Roughness": shading.radial_roughness, "Coat": shading.coat, "IOR": shading.ior,
              "Random Color": shading.random_color, "Random Roughness": shading.random_roughness}
    for socket, value in values.items():
        bsdf.inputs[socket].default_value = value
    links.new(bsdf.outputs[0], output.inputs["Surface"])
    if shading.tip is not None:
        info = nodes.new("ShaderNodeHairInfo")  # "Curves Info": Intercept is 0 at the root, 1 at the tip
        info.location = (-500, 0)
        for row, (socket, root, tip) in enumerate((("Melanin", shading.melanin, shading.tip[0]),
                                                   ("Melanin Redness", shading.melanin_redness, shading.tip[1]))):
            mix = nodes.new("ShaderNodeMix")
            mix.data_type = "FLOAT"
            mix.name = mix.label = f"{socket} root to tip"
            mix.location = (-250, -row * 200)
            mix.inputs["A"].default_value, mix.inputs["B"].default_value = root, tip
            links.new(info.outputs["Intercept"], mix.inputs["Factor"])
            links.new(mix.outputs["Result"], bsdf.inputs[socket])
    return material


def _density_masks(mesh: bpy.types.Mesh, bundle: Bundle) -> None:
    """Float point attributes on the head mesh, 1 where each group's children may grow.

    Scalp: the bundle's ``scalp_vertices`` plus the guides' root polygons; beard: the beard guides' root polygons
    and their neighbours (the format has no beard region, and the roots are where the beard is).
    """
    hair = bundle.hair
    faces = bundle.faces
    for group in HAIR_GROUPS:
        curves = hair.group_curves(group)
        if curves.size == 0:
            continue
        corners = faces[hair.root_face[curves]]
        region = np.zeros(len(bundle.vertices), bool)
        region[corners[corners >= 0]] = True
        if group == "scalp":
            region[hair.scalp_vertices] = True
        else:
            touching = (region[np.maximum(faces, 0)] & (faces >= 0)).any(axis=1)  # one ring of polygons out
            region[faces[touching][faces[touching] >= 0]] = True
        attribute = mesh.attributes.new(density_mask_name(group), "FLOAT", "POINT")
        attribute.data.foreach_set("value", region.astype(np.float32))


def _curves_data(name: str, hair: Hair, curves: np.ndarray, root_normals: np.ndarray) -> bpy.types.Curves:
    points, offsets, radius = hair.subset(curves)
    data = bpy.data.hair_curves.new(name)
    data.add_curves(np.diff(offsets).tolist())
    data.attributes["position"].data.foreach_set("vector", points_to_blender(points).astype(np.float32).ravel())
    radius_attribute = data.attributes.get("radius") or data.attributes.new("radius", "FLOAT", "POINT")
    radius_attribute.data.foreach_set("value", radius.astype(np.float32))
    uv = data.attributes.new("surface_uv_coordinate", "FLOAT2", "CURVE")
    uv.data.foreach_set("vector", hair.root_uv[curves].astype(np.float32).ravel())
    normal = data.attributes.new(ROOT_NORMAL, "FLOAT_VECTOR", "CURVE")
    normal.data.foreach_set("vector", root_normals.astype(np.float32).ravel())
    return data


def build_hair(bundle: Bundle, head: bpy.types.Object, collection: bpy.types.Collection, name: str,
               density: float = 0.0, created: list | None = None) -> tuple[list[bpy.types.Object], str]:
    """One Curves object per hair group on ``head``; returns (objects, a note for the status line, or '').

    ``density`` is strands per cm² for the interpolation (0: the bundle's ``strands_per_cm2``). Every new ID is
    appended to ``created`` as soon as it exists, so the caller can remove them all if a later step fails.
    """
    created = created if created is not None else []
    hair = bundle.hair
    before = set(bpy.data.node_groups)
    groups = _append_node_groups((INTERPOLATE, CLUMP, FRIZZ))
    deform = _surface_deform_group()
    created.extend(g for g in bpy.data.node_groups if g not in before)
    styled = INTERPOLATE in groups
    note = "" if styled else "hair: guide curves only (this Blender has no procedural hair node groups)"
    head.add_rest_position_attribute = True  # what Deform Curves on Surface and the interpolation measure from
    _density_masks(head.data, bundle)
    normals = points_to_blender(polygon_normals(bundle.vertices.astype(np.float64), bundle.faces))
    objects = []
    for group_name in HAIR_GROUPS:
        curves = hair.group_curves(group_name)
        if curves.size == 0:
            continue
        shading = hair.groups[group_name]
        data = _curves_data(f"{name}_hair_{group_name}", hair, curves, normals[hair.root_face[curves]])
        created.append(data)
        obj = bpy.data.objects.new(f"{name}_hair_{group_name}", data)
        created.append(obj)
        collection.objects.link(obj)
        data.surface = head
        data.surface_uv_map = UV_MAP
        obj.parent = head
        obj.matrix_parent_inverse = head.matrix_world.inverted()  # keep the world transform, as Empty Hair does
        obj.invertavatar.role = "HAIR"
        obj["invertavatar_hair_group"] = group_name
        obj["invertavatar_hair_shading"] = json.dumps(asdict(shading))
        obj["invertavatar_bundle_density"] = float(shading.strands_per_cm2)
        material = build_hair_material(f"{name}_hair_{group_name}", shading)
        created.append(material)
        data.materials.append(material)
        if styled:
            spacing = root_spacing(points_to_blender(hair.points[hair.curve_offsets[curves]]))
            _style(obj, head, groups, density if density > 0 else shading.strands_per_cm2, spacing, group_name)
        _modifier(obj, SURFACE_DEFORM, deform)
        objects.append(obj)
    return objects, note


def show_hair(scene: bpy.types.Scene, visible: bool) -> int:
    """Show or hide every InvertAvatar hair object in ``scene`` (viewport and render); returns how many."""
    count = 0
    for obj in scene.objects:
        if obj.type == "CURVES" and obj.invertavatar.role == "HAIR":
            obj.hide_viewport = obj.hide_render = not visible
            count += 1
    return count
