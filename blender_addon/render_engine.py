"""Neural preview render engine: asks the backend to render the avatar with the current frame's expression.

Select "InvertAvatar Preview" as the render engine and render (F12). The engine reads the ARKit values and the
head bone's rotation at the frame being rendered, sends them to ``POST /v1/avatars/{id}/render`` and shows the
PNG that comes back. It renders the first visible InvertAvatar head (the active one when it is an avatar).
"""

from __future__ import annotations

import os
import re
import tempfile

import bpy
import numpy as np

from .core.arkit import ARKIT_NAMES
from .core.axes import quats_in_frame, quats_to_backend
from .core.errors import AddonError
from .core.png import png_size
from .preferences import current_settings
from .scene.actions import owner_fcurves

_KEY_PATH = re.compile(r'^key_blocks\["(.+)"\]\.value$')


def expression_at(head: bpy.types.Object, frame: float) -> dict[str, float]:
    """ARKit values of ``head`` at ``frame``: the animated value where keyed, the slider value otherwise."""
    blocks = head.data.shape_keys.key_blocks
    values = {name: float(blocks[name].value) for name in ARKIT_NAMES if name in blocks}
    for fcurve in owner_fcurves(head.data.shape_keys):
        match = _KEY_PATH.match(fcurve.data_path)
        if match and match.group(1) in values and not fcurve.mute:
            values[match.group(1)] = float(np.clip(fcurve.evaluate(frame), 0.0, 1.0))
    return values


def head_rotation_at(rig: bpy.types.Object | None, frame: float) -> list[float]:
    """The head bone's rotation at ``frame`` as a quaternion [w, x, y, z] in backend axes."""
    if rig is None or "head" not in rig.pose.bones:
        return [1.0, 0.0, 0.0, 0.0]
    quat = np.array(rig.pose.bones["head"].rotation_quaternion, dtype=np.float64)
    path = 'pose.bones["head"].rotation_quaternion'
    for fcurve in owner_fcurves(rig):
        if fcurve.data_path == path and not fcurve.mute:
            quat[fcurve.array_index] = fcurve.evaluate(frame)
    rest = np.array(rig.data.bones["head"].matrix_local.to_3x3(), dtype=np.float64)
    # Bone-local rotation back to armature (Blender) axes, then to backend axes.
    armature_q = quats_in_frame(quat, rest.T)
    armature_q /= np.linalg.norm(armature_q)
    return quats_to_backend(armature_q).tolist()


def _find_head(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer | None) -> bpy.types.Object | None:
    active = view_layer.objects.active if view_layer is not None else None
    candidates = ([active] if active is not None else []) + list(scene.objects)
    for obj in candidates:
        if obj.type == "MESH" and obj.invertavatar.role == "HEAD" and obj.invertavatar.avatar_id:
            if obj is active or not obj.hide_render:
                return obj
    return None


class INVERTAVATAR_RenderEngine(bpy.types.RenderEngine):
    """Renders the neural avatar on the backend for the current frame's expression."""

    bl_idname = "INVERTAVATAR_PREVIEW"
    bl_label = "InvertAvatar Preview"
    bl_use_preview = False
    bl_use_postprocess = True

    def render(self, depsgraph: bpy.types.Depsgraph) -> None:
        scene = depsgraph.scene
        scale = scene.render.resolution_percentage / 100.0
        width, height = int(scene.render.resolution_x * scale), int(scene.render.resolution_y * scale)
        result = self.begin_result(0, 0, width, height)
        try:
            self._render_into(result, scene, depsgraph.view_layer, width, height)
        except AddonError as exc:
            self.report({"ERROR"}, str(exc))
            self.error_set(str(exc))
        finally:
            self.end_result(result)

    def _render_into(self, result, scene, view_layer, width: int, height: int) -> None:
        head = _find_head(scene, view_layer)
        if head is None:
            raise AddonError("no_avatar", "No InvertAvatar head made by a backend is in the scene.",
                             "Reconstruct an avatar first (imported bundles have no backend avatar to render).")
        rig = head.parent if head.parent is not None and head.parent.type == "ARMATURE" else None
        frame = float(scene.frame_current)
        settings = current_settings()
        png = settings.client().render(head.invertavatar.avatar_id, expression_at(head, frame),
                                       head_rotation_at(rig, frame), width, height)
        if png_size(png) != (width, height):
            raise AddonError("bad_response", f"The backend rendered {png_size(png)} instead of {(width, height)}.",
                             "Update the backend.")
        handle, path = tempfile.mkstemp(suffix=".png", prefix="invertavatar-preview-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(png)
            result.layers[0].load_from_file(path)  # a plain image goes into the layer (RenderResult takes EXR)
        finally:
            os.unlink(path)


def _compatible_panels() -> list:
    """Built-in panels that make sense for this engine (output/format settings)."""
    keep = ("RENDER_PT_format", "RENDER_PT_frame_range", "RENDER_PT_output", "RENDER_PT_color_management")
    return [getattr(bpy.types, name) for name in keep if hasattr(bpy.types, name)]


def register() -> None:
    bpy.utils.register_class(INVERTAVATAR_RenderEngine)
    for panel in _compatible_panels():
        if hasattr(panel, "COMPAT_ENGINES"):
            panel.COMPAT_ENGINES.add(INVERTAVATAR_RenderEngine.bl_idname)


def unregister() -> None:
    for panel in _compatible_panels():
        if hasattr(panel, "COMPAT_ENGINES"):
            panel.COMPAT_ENGINES.discard(INVERTAVATAR_RenderEngine.bl_idname)
    bpy.utils.unregister_class(INVERTAVATAR_RenderEngine)
