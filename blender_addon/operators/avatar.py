"""Operators on avatars without a backend job: import a bundle, apply a tracks file, expressions, export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..core.arkit import ARKIT_NAMES
from ..core.bundle import extract_bundle_zip, read_bundle, read_tracks
from ..core.errors import AddonError
from ..properties import set_status
from ..scene.animation import apply_tracks
from ..scene.avatar import build_avatar, find_avatar
from ..scene.export import export_avatar
from ..scene.hair import hair_objects


def _error(op: bpy.types.Operator, context: bpy.types.Context, exc: AddonError) -> set[str]:
    set_status(context, str(exc), error=True)
    op.report({"ERROR"}, str(exc))
    return {"CANCELLED"}


class INVERTAVATAR_OT_import_bundle(bpy.types.Operator, ImportHelper):
    """Import an avatar bundle (a NAME.avatar folder's manifest.json, or a bundle .zip) into the scene"""

    bl_idname = "invertavatar.import_bundle"
    bl_label = "Import Avatar Bundle"
    bl_description = "Build an avatar from a bundle on disk (pick its manifest.json or a bundle .zip)"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="manifest.json;*.zip", options={"HIDDEN"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = Path(bpy.path.abspath(self.filepath))
        try:
            if path.suffix.lower() == ".zip":
                root = extract_bundle_zip(path, Path(tempfile.mkdtemp(prefix="invertavatar-")))
                name = path.stem
            else:
                root = path.parent if path.is_file() else path
                name = root.name.removesuffix(".avatar")
            bundle = read_bundle(root)
            avatar = build_avatar(context, bundle, name or "Avatar",
                                  animate=context.scene.invertavatar.animate_on_import)
        except AddonError as exc:
            return _error(self, context, exc)
        set_status(context, f"Imported {avatar.mesh_object}" + (f" — {avatar.note}" if avatar.note else ""))
        return {"FINISHED"}


class INVERTAVATAR_OT_apply_tracks(bpy.types.Operator, ImportHelper):
    """Key a tracks.json performance on the selected avatar"""

    bl_idname = "invertavatar.apply_tracks"
    bl_label = "Apply Tracks File"
    bl_description = "Key the expressions, head pose and gaze of a tracks.json file on the selected avatar"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return find_avatar(context.active_object)[0] is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        head, rig = find_avatar(context.active_object)
        try:
            tracks = read_tracks(bpy.path.abspath(self.filepath))
            apply_tracks(context.scene, head, rig, tracks, Path(tracks.source or self.filepath).stem)
        except AddonError as exc:
            return _error(self, context, exc)
        set_status(context, f"Keyed {len(tracks.indices)} frames on {head.name}")
        return {"FINISHED"}


class _ExpressionOperator:
    """Shared by the expression operators: they need an avatar head with its shape keys selected."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head = find_avatar(context.active_object)[0]
        return head is not None and head.data.shape_keys is not None


class INVERTAVATAR_OT_key_expressions(_ExpressionOperator, bpy.types.Operator):
    """Insert a keyframe for all 52 ARKit shape keys at the current frame"""

    bl_idname = "invertavatar.key_expressions"
    bl_label = "Key All"
    bl_description = "Insert keyframes for all 52 ARKit expression values at the current frame"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        head = find_avatar(context.active_object)[0]
        blocks = head.data.shape_keys.key_blocks
        frame = context.scene.frame_current
        for name in ARKIT_NAMES:
            if name in blocks:
                blocks[name].keyframe_insert("value", frame=frame, group="Expressions")
        return {"FINISHED"}


class INVERTAVATAR_OT_reset_expressions(_ExpressionOperator, bpy.types.Operator):
    """Set all 52 ARKit shape keys back to 0"""

    bl_idname = "invertavatar.reset_expressions"
    bl_label = "Reset"
    bl_description = "Set every ARKit expression value to 0 (keyframes are kept; key again to record it)"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        blocks = find_avatar(context.active_object)[0].data.shape_keys.key_blocks
        for name in ARKIT_NAMES:
            if name in blocks:
                blocks[name].value = 0.0
        return {"FINISHED"}


class INVERTAVATAR_OT_export(bpy.types.Operator, ExportHelper):
    """Export the selected avatar (head and rig) with shape keys and animation"""

    bl_idname = "invertavatar.export"
    bl_label = "Export Avatar"
    bl_description = "Write the avatar as FBX (Unity/Unreal) or GLB with its shape keys, rig and animation"

    filename_ext = ""
    format: EnumProperty(name="Format", items=(
        ("FBX", "FBX for Unity/Unreal", "FBX with baked shape-key and bone animation"),
        ("GLB", "glTF binary (GLB)", "glTF 2.0 binary with morph targets, skin and animation")), default="FBX")
    hair_cards: BoolProperty(
        name="Hair Cards", default=True,
        description="FBX and glTF cannot hold hair curves: export the avatar's hair as card meshes instead (one "
                    "textured ribbon per guide curve, skinned to the rig). Ignored when the avatar has no hair")
    filter_glob: StringProperty(default="*.fbx;*.glb", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return find_avatar(context.active_object)[0] is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        self.filename_ext = ".fbx" if self.format == "FBX" else ".glb"
        self.hair_cards = bool(hair_objects(find_avatar(context.active_object)[0]))
        return ExportHelper.invoke(self, context, event)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "format")
        row = layout.row()
        row.enabled = bool(hair_objects(find_avatar(context.active_object)[0]))
        row.prop(self, "hair_cards")

    def execute(self, context: bpy.types.Context) -> set[str]:
        head, rig = find_avatar(context.active_object)
        objects = [o for o in (head, rig) if o is not None]
        try:
            written = export_avatar(context, objects, bpy.path.abspath(self.filepath), self.format,
                                    hair_cards=self.hair_cards)
        except (RuntimeError, OSError) as exc:
            return _error(self, context, AddonError("export_failed", f"Export failed: {exc}",
                                                    "Check the folder is writable."))
        set_status(context, f"Exported {written.name}")
        self.report({"INFO"}, f"Exported {written}")
        return {"FINISHED"}


classes = (INVERTAVATAR_OT_import_bundle, INVERTAVATAR_OT_apply_tracks, INVERTAVATAR_OT_key_expressions,
           INVERTAVATAR_OT_reset_expressions, INVERTAVATAR_OT_export)
