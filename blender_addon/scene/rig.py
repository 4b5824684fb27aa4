"""Armature (root, neck, head, jaw, eye_L, eye_R), vertex groups from the bundle's weights, armature modifier."""

from __future__ import annotations

import bpy
import numpy as np

from ..core.axes import points_to_blender
from ..core.bundle import Bundle


def build_armature(bundle: Bundle, name: str, collection: bpy.types.Collection,
                   context: bpy.types.Context) -> bpy.types.Object:
    """An armature object whose bones sit at the bundle's rest positions (Blender axes), roll 0."""
    arm_data = bpy.data.armatures.new(name)
    arm_obj = bpy.data.objects.new(name, arm_data)
    collection.objects.link(arm_obj)
    heads = points_to_blender(bundle.bone_heads)
    tails = points_to_blender(bundle.bone_tails)
    view_layer = context.view_layer
    previous_active = view_layer.objects.active
    view_layer.objects.active = arm_obj
    # Edit bones exist only in edit mode; this is the one place the add-on switches mode.
    with context.temp_override(active_object=arm_obj, object=arm_obj, selected_objects=[arm_obj]):
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            bones = []
            for i, bone_name in enumerate(bundle.bone_names):
                bone = arm_data.edit_bones.new(bone_name)
                bone.head = heads[i].tolist()
                bone.tail = tails[i].tolist()
                bone.roll = 0.0
                bones.append(bone)
            for i, parent in enumerate(bundle.bone_parents.tolist()):
                if parent >= 0:
                    bones[i].parent = bones[parent]
                    bones[i].use_connect = False
                bones[i].use_deform = bundle.bone_names[i] != "root"
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = previous_active
    for pose_bone in arm_obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    arm_data.display_type = "STICK"
    arm_obj.show_in_front = True
    return arm_obj


def add_skinning(mesh_obj: bpy.types.Object, arm_obj: bpy.types.Object, bundle: Bundle) -> None:
    """One vertex group per bone filled from ``vertex_weights`` and an Armature modifier.

    ``VertexGroup.add`` takes one weight for many vertices, so vertices are grouped by identical weight:
    one call per distinct value instead of one per vertex.
    """
    weights = bundle.vertex_weights
    for b, bone_name in enumerate(bundle.bone_names):
        group = mesh_obj.vertex_groups.new(name=bone_name)
        column = weights[:, b]
        idx = np.flatnonzero(column > 0.0)
        if idx.size == 0:
            continue
        values, inverse = np.unique(column[idx], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(values) + 1))
        for k, value in enumerate(values.tolist()):
            group.add(idx[order[bounds[k]:bounds[k + 1]]].tolist(), value, "REPLACE")
    modifier = mesh_obj.modifiers.new(name="Armature", type="ARMATURE")
    modifier.object = arm_obj
    modifier.use_vertex_groups = True
    mesh_obj.parent = arm_obj


def bone_rest_frames(arm_obj: bpy.types.Object) -> dict[str, np.ndarray]:
    """Each bone's rest orientation (3×3, columns = bone axes in armature space) for pose conversions."""
    return {bone.name: np.array(bone.matrix_local.to_3x3(), dtype=np.float64) for bone in arm_obj.data.bones}
