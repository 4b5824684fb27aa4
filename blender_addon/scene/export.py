"""Export presets that keep shape keys and their animation (settings from the conventions checklist).

Hair curves do not export (neither FBX nor glTF has them); with ``hair_cards`` the export carries hair cards made
for the occasion (``hair_cards.py``) and removes them afterwards.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .hair_cards import build_hair_cards

# Without bake_anim_use_all_actions=False and bake_anim_use_nla_strips=False the FBX exporter writes no
# shape-key animation; use_mesh_modifiers and glTF's export_apply would drop the shape keys themselves.
# bake_anim_simplify_factor=0 keeps every baked key: with simplification a curve that barely moves is dropped
# entirely and the FBX importer then brings that shape key back at 100 %.
FBX_GAME_ENGINE = dict(
    use_selection=True, object_types={"ARMATURE", "MESH"}, use_mesh_modifiers=False, mesh_smooth_type="FACE",
    add_leaf_bones=False, use_armature_deform_only=True, bake_anim=True, bake_anim_use_all_actions=False,
    bake_anim_use_nla_strips=False, bake_anim_force_startend_keying=True, bake_anim_simplify_factor=0.0, path_mode="COPY", embed_textures=True,
    axis_forward="-Z", axis_up="Y", bake_space_transform=True, apply_scale_options="FBX_SCALE_UNITS",
)

GLTF_GLB = dict(
    export_format="GLB", use_selection=True, export_yup=True, export_apply=False, export_morph=True,
    export_morph_normal=True, export_skins=True, export_def_bones=True, export_animations=True,
    export_animation_mode="ACTIVE_ACTIONS", export_force_sampling=True,
)


def _select_only(context: bpy.types.Context, objects: list[bpy.types.Object]) -> None:
    for obj in context.view_layer.objects:
        obj.select_set(False)
    for obj in objects:
        obj.select_set(True)
    context.view_layer.objects.active = objects[0]


def _remove(created: list) -> None:
    stores = {bpy.types.Object: bpy.data.objects, bpy.types.Mesh: bpy.data.meshes,
              bpy.types.Material: bpy.data.materials, bpy.types.Image: bpy.data.images}
    for block in reversed(created):
        try:
            next(store for kind, store in stores.items() if isinstance(block, kind)).remove(block)
        except (ReferenceError, StopIteration):
            pass


def export_avatar(context: bpy.types.Context, objects: list[bpy.types.Object], path: str | Path,
                  fmt: str, hair_cards: bool = True) -> Path:
    """Write the given avatar objects (head and rig) as ``FBX`` or ``GLB``; returns the file written.

    ``hair_cards``: the head's hair goes along as card meshes skinned to the rig (when the head has hair).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = [o for o in context.view_layer.objects if o.select_get()]
    previous_active = context.view_layer.objects.active
    created: list = []
    try:
        if hair_cards:
            head = next((o for o in objects if o.invertavatar.role == "HEAD"), None)
            rig = next((o for o in objects if o.invertavatar.role == "RIG"), None)
            if head is not None:
                objects = [*objects, *build_hair_cards(head, rig, created)]
        _select_only(context, objects)
        if fmt == "FBX":
            bpy.ops.export_scene.fbx(filepath=str(path.with_suffix(".fbx")), **FBX_GAME_ENGINE)
            return path.with_suffix(".fbx")
        if fmt == "GLB":
            bpy.ops.export_scene.gltf(filepath=str(path.with_suffix(".glb")), **GLTF_GLB)
            return path.with_suffix(".glb")
        raise ValueError(f"unknown export format {fmt!r}")
    finally:
        _remove(created)
        for obj in context.view_layer.objects:
            obj.select_set(obj in previous)
        context.view_layer.objects.active = previous_active
