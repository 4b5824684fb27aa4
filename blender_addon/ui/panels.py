"""The "InvertAvatar" sidebar tab of the 3D View and its sub-panels."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core.arkit import ARKIT_GROUPS
from ..scene.avatar import find_avatar


class _Sidebar:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "InvertAvatar"


class INVERTAVATAR_UL_inputs(bpy.types.UIList):
    """The photos and clips to upload."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        path = Path(item.filepath)
        is_clip = path.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
        layout.label(text=path.name, icon="FILE_MOVIE" if is_clip else "FILE_IMAGE")


class INVERTAVATAR_PT_main(_Sidebar, bpy.types.Panel):
    bl_label = "InvertAvatar"

    def draw(self, context: bpy.types.Context) -> None:
        job = context.window_manager.invertavatar
        row = self.layout.row(align=True)
        row.operator("invertavatar.test_connection", icon="LINKED")
        if job.backend_info:
            self.layout.label(text=job.backend_info)
        if job.status:
            # Reports scroll away; the last message stays here until the next one.
            self.layout.label(text=job.status, icon="ERROR" if job.status_is_error else "INFO")


class INVERTAVATAR_PT_input(_Sidebar, bpy.types.Panel):
    bl_label = "Input"
    bl_parent_id = "INVERTAVATAR_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        props = context.scene.invertavatar
        row = self.layout.row()
        row.template_list("INVERTAVATAR_UL_inputs", "", props, "inputs", props, "input_index", rows=3)
        col = row.column(align=True)
        col.operator("invertavatar.add_inputs", icon="ADD", text="")
        col.operator("invertavatar.remove_input", icon="REMOVE", text="")
        col.operator("invertavatar.clear_inputs", icon="X", text="")


class INVERTAVATAR_PT_reconstruct(_Sidebar, bpy.types.Panel):
    bl_label = "Reconstruct"
    bl_parent_id = "INVERTAVATAR_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        props, job, layout = context.scene.invertavatar, context.window_manager.invertavatar, self.layout
        layout.prop(props, "mode", expand=True)
        layout.prop(props, "head_model")
        row = layout.row(align=True)
        row.prop(props, "every")
        row.prop(props, "max_frames")
        layout.prop(props, "animate_on_import")
        row = layout.row(align=True)
        row.prop(props, "import_hair")
        sub = row.row(align=True)
        sub.active = props.import_hair
        sub.prop(props, "hair_density", text="Density")
        layout.prop(props, "accept_any_face")
        if job.running:
            layout.progress(factor=job.progress, type="BAR", text=f"{job.stage}: {job.progress:.0%}")
            layout.operator("invertavatar.cancel", icon="CANCEL")
        else:
            layout.operator("invertavatar.reconstruct", icon="USER")
        layout.operator("invertavatar.import_bundle", icon="IMPORT")


class INVERTAVATAR_PT_avatar(_Sidebar, bpy.types.Panel):
    bl_label = "Avatar"
    bl_parent_id = "INVERTAVATAR_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        head, rig = find_avatar(context.active_object)
        layout = self.layout
        if head is None:
            layout.label(text="Select an InvertAvatar head or rig")
            return
        info = head.invertavatar
        layout.label(text=head.name, icon="OUTLINER_OB_MESH")
        layout.label(text=f"Backend avatar: {info.avatar_id or '(imported from disk)'}")
        layout.label(text=f"Model: {info.head_model or '?'}, mode: {info.mode or '?'}, frames: {info.frames_used}")
        layout.progress(factor=info.coverage, type="BAR", text=f"Texture coverage {info.coverage:.0%}")
        missing = head.get("invertavatar_missing_shapes") or []
        if missing:
            layout.label(text=f"Not in the head model: {', '.join(missing)}", icon="INFO")
        layout.operator("invertavatar.refine", icon="FILE_REFRESH")
        layout.prop(info, "texture_source", expand=True)
        layout.operator("invertavatar.bake_neural", icon="TEXTURE")


class INVERTAVATAR_PT_expressions(_Sidebar, bpy.types.Panel):
    bl_label = "Expressions"
    bl_parent_id = "INVERTAVATAR_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        head = find_avatar(context.active_object)[0]
        layout = self.layout
        row = layout.row(align=True)
        row.operator("invertavatar.key_expressions", icon="KEYFRAME_HLT")
        row.operator("invertavatar.reset_expressions", icon="LOOP_BACK")
        if head is None or head.data.shape_keys is None:
            layout.label(text="Select an InvertAvatar head")
            return
        blocks = head.data.shape_keys.key_blocks
        for group, names in ARKIT_GROUPS:
            box = layout.box()
            box.label(text=group)
            col = box.column(align=True)
            for name in names:
                if name in blocks:
                    col.prop(blocks[name], "value", text=name, slider=True)


class INVERTAVATAR_PT_animate(_Sidebar, bpy.types.Panel):
    bl_label = "Animate"
    bl_parent_id = "INVERTAVATAR_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.label(text="Uses the clip in the Input list")
        layout.operator("invertavatar.animate", icon="ARMATURE_DATA")
        layout.operator("invertavatar.apply_tracks", icon="FILE")
        layout.operator("invertavatar.render_animation_backend", icon="RENDER_ANIMATION")
        layout.label(text=f"Scene: {context.scene.render.fps / context.scene.render.fps_base:.3g} fps, "
                          f"frames {context.scene.frame_start}–{context.scene.frame_end}")


class INVERTAVATAR_PT_export(_Sidebar, bpy.types.Panel):
    bl_label = "Export"
    bl_parent_id = "INVERTAVATAR_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column(align=True)
        col.operator("invertavatar.export", text="FBX for Unity/Unreal", icon="EXPORT").format = "FBX"
        col.operator("invertavatar.export", text="glTF / GLB", icon="EXPORT").format = "GLB"


classes = (INVERTAVATAR_UL_inputs, INVERTAVATAR_PT_main, INVERTAVATAR_PT_input, INVERTAVATAR_PT_reconstruct,
           INVERTAVATAR_PT_avatar, INVERTAVATAR_PT_expressions, INVERTAVATAR_PT_animate, INVERTAVATAR_PT_export)
