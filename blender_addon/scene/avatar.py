"""Build a whole avatar from a bundle as one unit: everything or nothing ends up in the scene."""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy

from ..core.bundle import Bundle
from .animation import apply_tracks
from .hair import build_hair
from .material import assign_overlay_material, build_material
from .mesh import add_shape_keys, build_mesh
from .rig import add_skinning, build_armature


@dataclass
class Avatar:
    """Names (not references: references die across undo) of what ``build_avatar`` created."""

    mesh_object: str
    armature_object: str
    collection: str
    hair_objects: list[str] = field(default_factory=list)
    note: str = ""  # what the status line should add (e.g. the hair was imported without styling)


def _unique(name: str) -> str:
    base, n = name, 1
    while name in bpy.data.objects or name in bpy.data.collections:
        n += 1
        name = f"{base}.{n:03d}"
    return name


def build_avatar(context: bpy.types.Context, bundle: Bundle, name: str = "Avatar", avatar_id: str = "",
                 backend_url: str = "", animate: bool = True, hair: bool | None = None,
                 hair_density: float | None = None) -> Avatar:
    """Create the head mesh (Basis + 52 ARKit keys), armature + weights, material, the clip's keys if any, and
    the bundle's hair as Curves objects on the head.

    ``hair`` and ``hair_density`` (strands per cm², 0 = the bundle's) default to the scene's *Hair* settings.
    Objects go into a new collection under the scene's; the new head becomes active and selected. Any failure
    removes what was already created before the error propagates.
    """
    settings = context.scene.invertavatar
    hair = settings.import_hair if hair is None else hair
    hair_density = settings.hair_density if hair_density is None else hair_density
    name = _unique(name)
    active = context.view_layer.objects.active
    if active is not None and active.mode != "OBJECT":
        # Building the rig needs edit mode on the new armature; leave whatever mode the artist was in first.
        with context.temp_override(active_object=active, object=active):
            bpy.ops.object.mode_set(mode="OBJECT")
    created: list[bpy.types.ID] = []
    try:
        collection = bpy.data.collections.new(name)
        created.append(collection)
        context.scene.collection.children.link(collection)
        mesh = build_mesh(bundle, f"{name}_head")
        created.append(mesh)
        head = bpy.data.objects.new(f"{name}_head", mesh)
        created.append(head)
        collection.objects.link(head)
        add_shape_keys(head, bundle)
        material = build_material(f"{name}_skin", bundle.textures)
        created.append(material)
        created.extend(n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE" and n.image)
        mesh.materials.append(material)
        overlay = assign_overlay_material(mesh, bundle, f"{name}_eye_overlay")
        if overlay is not None:
            created.append(overlay)
        armature = build_armature(bundle, f"{name}_rig", collection, context)
        created.extend([armature, armature.data])
        add_skinning(head, armature, bundle)
        _link_backend(head, bundle, avatar_id, backend_url, "HEAD")
        if "neural_baked" in bundle.textures:
            head.invertavatar.texture_source = "NEURAL"  # the neural bake by default when there is one
        _link_backend(armature, bundle, avatar_id, backend_url, "RIG")
        if animate and bundle.tracks is not None and len(bundle.tracks.indices) > 1:
            created.extend(apply_tracks(context.scene, head, armature, bundle.tracks, name))
        hair_objects, note = [], ""
        if hair and bundle.hair is not None:
            hair_objects, note = build_hair(bundle, head, collection, name, hair_density, created)
        for obj in context.view_layer.objects:
            obj.select_set(False)
        head.select_set(True)
        context.view_layer.objects.active = head
        return Avatar(head.name, armature.name, collection.name, [o.name for o in hair_objects], note)
    except BaseException:
        _remove(created)
        raise


def _link_backend(obj: bpy.types.Object, bundle: Bundle, avatar_id: str, url: str, role: str) -> None:
    props = obj.invertavatar
    props.role = role
    props.avatar_id = avatar_id
    props.backend_url = url
    props.coverage = bundle.coverage
    props.head_model = str((bundle.manifest.get("head_model") or {}).get("id", ""))
    props.mode = str(bundle.manifest.get("mode", ""))
    props.frames_used = int((bundle.manifest.get("frames") or {}).get("used", 0))


def _remove(created: list) -> None:
    """Delete IDs in reverse creation order (objects before their data)."""
    collections = {bpy.types.Object: bpy.data.objects, bpy.types.Mesh: bpy.data.meshes,
                   bpy.types.Armature: bpy.data.armatures, bpy.types.Material: bpy.data.materials,
                   bpy.types.Image: bpy.data.images, bpy.types.Collection: bpy.data.collections,
                   bpy.types.Action: bpy.data.actions, bpy.types.Curves: bpy.data.hair_curves,
                   bpy.types.NodeTree: bpy.data.node_groups}
    for block in reversed(created):
        try:
            for kind, store in collections.items():
                if isinstance(block, kind):
                    store.remove(block)
                    break
        except ReferenceError:
            pass  # already gone with its owner


def find_avatar(obj: bpy.types.Object | None) -> tuple[bpy.types.Object | None, bpy.types.Object | None]:
    """(head mesh, armature) of the avatar ``obj`` belongs to, or (None, None)."""
    if obj is None or not hasattr(obj, "invertavatar"):
        return None, None
    if obj.invertavatar.role == "HEAD":
        arm = obj.parent if obj.parent is not None and obj.parent.type == "ARMATURE" else None
        return obj, arm
    if obj.invertavatar.role == "RIG":
        heads = [c for c in obj.children if c.type == "MESH" and c.invertavatar.role == "HEAD"]
        return (heads[0] if heads else None), obj
    return None, None
