"""Input list operators: add photos or a clip, remove one, clear all."""

from __future__ import annotations

import os

import bpy
from bpy.props import CollectionProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXT = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
FILTER = ";".join("*" + e for e in IMAGE_EXT + VIDEO_EXT)


class INVERTAVATAR_OT_add_inputs(bpy.types.Operator, ImportHelper):
    """Add photos or a video clip of a face to the input list"""

    bl_idname = "invertavatar.add_inputs"
    bl_label = "Add Photos or Clip"
    bl_description = "Choose photos or a clip of one face (the backend checks their content)"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default=FILTER, options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        names = [f.name for f in self.files if f.name] if self.files else []
        paths = [os.path.join(self.directory, n) for n in names] if names else [self.filepath]
        inputs = context.scene.invertavatar.inputs
        known = {i.filepath for i in inputs}
        added = 0
        for path in paths:
            path = bpy.path.abspath(path)
            if not os.path.isfile(path):
                self.report({"WARNING"}, f"Not a file: {path}")
                continue
            if path not in known:
                inputs.add().filepath = path
                known.add(path)
                added += 1
        context.scene.invertavatar.input_index = len(inputs) - 1
        self.report({"INFO"}, f"Added {added} input(s)")
        return {"FINISHED"} if added else {"CANCELLED"}


class INVERTAVATAR_OT_remove_input(bpy.types.Operator):
    """Remove the selected input from the list"""

    bl_idname = "invertavatar.remove_input"
    bl_label = "Remove Input"
    bl_description = "Remove the selected photo or clip from the input list (the file is not touched)"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = context.scene.invertavatar
        return 0 <= props.input_index < len(props.inputs) and not context.window_manager.invertavatar.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.invertavatar
        props.inputs.remove(props.input_index)
        props.input_index = min(props.input_index, len(props.inputs) - 1)
        return {"FINISHED"}


class INVERTAVATAR_OT_clear_inputs(bpy.types.Operator):
    """Remove all inputs from the list"""

    bl_idname = "invertavatar.clear_inputs"
    bl_label = "Clear Inputs"
    bl_description = "Empty the input list (the files are not touched)"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return len(context.scene.invertavatar.inputs) > 0 and not context.window_manager.invertavatar.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.scene.invertavatar.inputs.clear()
        context.scene.invertavatar.input_index = -1
        return {"FINISHED"}


classes = (INVERTAVATAR_OT_add_inputs, INVERTAVATAR_OT_remove_input, INVERTAVATAR_OT_clear_inputs)
