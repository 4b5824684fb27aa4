"""Backend jobs on an existing avatar: the neural bake button, and rendering the scene's animation remotely.

Both are backend jobs like a reconstruction (same polling, Esc/Cancel, download). When the bake is done the new
``neural_baked.png`` replaces the *Neural bake* image of the head's material, which is switched to it. *Render
Animation on Backend* sends the performance of the scene's frame range (ARKit keys, head pose, gaze) as one
``animate`` job and saves the returned MP4 where the output settings point.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core import errors as E
from ..core.bundle import read_bundle
from ..core.errors import AddonError
from ..core.arkit import ARKIT_NAMES
from ..core.jobs import AnimationRunner, BakeRunner, JobRunner
from ..scene.avatar import find_avatar
from ..scene.material import replace_neural_bake
from .reconstruct import _JobFlow


class _AvatarJob(_JobFlow):
    """A backend job on the selected backend-made avatar, without an upload."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head, _ = find_avatar(context.active_object)
        return (head is not None and bool(head.invertavatar.avatar_id)
                and not context.window_manager.invertavatar.running)

    def _inputs(self, context: bpy.types.Context) -> list[Path]:
        return []

    def _refine_id(self, context: bpy.types.Context) -> str | None:
        head, _ = find_avatar(context.active_object)
        self._head = head.name
        return head.invertavatar.avatar_id


class INVERTAVATAR_OT_bake_neural(_AvatarJob, bpy.types.Operator):
    """Render the neural avatar from views around the head and fuse them into its UV texture"""

    bl_idname = "invertavatar.bake_neural"
    bl_label = "Bake Neural Texture"
    bl_description = ("Bake the neural avatar (front, sides, above, below, back) into the head's texture layout on "
                      "the backend, then show it on the material (neural avatars only; Esc cancels)")
    runner_class = BakeRunner

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head, _ = find_avatar(context.active_object)
        return super().poll(context) and head.invertavatar.mode == "neural"

    def _build(self, context: bpy.types.Context, runner: JobRunner, bundle_dir: Path) -> str:
        bundle = read_bundle(bundle_dir)
        head = bpy.data.objects.get(self._head)
        if head is None:
            raise AddonError(E.BAD_INPUT, "The avatar was deleted during the bake.", "Select an avatar and bake again.")
        if "neural_baked" not in bundle.textures:
            raise AddonError(E.BAD_BUNDLE, "The backend returned no neural texture.", "Check the backend log.")
        for slot in head.material_slots:
            if slot.material is not None and slot.material.use_nodes and slot.material.node_tree.nodes.get("Albedo"):
                replace_neural_bake(slot.material, bundle.textures["neural_baked"])
        head.invertavatar.texture_source = "NEURAL"
        coverage = bundle.manifest.get("neural_bake", {}).get("coverage", 0.0)
        return f"Neural texture of {head.name} baked (coverage {coverage:.0%})"


def scene_performance(scene: bpy.types.Scene, head: bpy.types.Object) -> dict:
    """tracks.json content for the scene's frame range, read from the head's keys and its rig."""
    from ..render_engine import expression_at, gaze_at, head_rotation_at, head_translation_at

    rig = head.parent if head.parent is not None and head.parent.type == "ARMATURE" else None
    fps = scene.render.fps / scene.render.fps_base
    frames = []
    for frame in range(scene.frame_start, scene.frame_end + 1, max(1, scene.frame_step)):
        arkit = expression_at(head, frame)
        record = {"index": frame, "time": round((frame - scene.frame_start) / fps, 6),
                  "arkit": [float(arkit.get(name, 0.0)) for name in ARKIT_NAMES],
                  "head_rotation": head_rotation_at(rig, frame), "head_translation": head_translation_at(rig, frame)}
        gaze = gaze_at(rig, frame)
        if gaze:
            record["gaze"] = gaze
        frames.append(record)
    return {"fps": fps, "source": scene.name, "arkit_names": list(ARKIT_NAMES), "frames": frames}


def animation_output(scene: bpy.types.Scene) -> Path:
    """The MP4 path from the output settings: the output path, with ``.mp4`` (a folder gets a file name)."""
    path = Path(bpy.path.abspath(scene.render.filepath or "//"))
    if scene.render.filepath.endswith(("/", "\\")) or path.is_dir():
        path = path / f"{scene.name}_invertavatar.mp4"
    return path if path.suffix.lower() == ".mp4" else path.with_name(path.name + ".mp4")


class INVERTAVATAR_OT_render_animation_backend(_AvatarJob, bpy.types.Operator):
    """Render the scene's frame range on the backend as one job and save the video"""

    bl_idname = "invertavatar.render_animation_backend"
    bl_label = "Render Animation on Backend"
    bl_description = ("Send the frame range's expressions, head pose and gaze to the backend, which renders every "
                      "frame with the chosen renderer (portrait framing) and returns one MP4, saved at the output "
                      "path (Esc cancels)")
    runner_class = AnimationRunner

    def _options(self, context: bpy.types.Context) -> dict:
        from ..render_engine import RENDERERS

        scene = context.scene
        head, _ = find_avatar(context.active_object)
        scale = scene.render.resolution_percentage / 100.0
        size = int(min(scene.render.resolution_x, scene.render.resolution_y) * scale)
        request = {"tracks": scene_performance(scene, head), "size": max(16, min(2048, size)),
                   "renderer": RENDERERS[scene.invertavatar.renderer]}
        return {k: v for k, v in request.items() if v is not None}

    def _build(self, context: bpy.types.Context, runner: JobRunner, video: Path) -> str:
        target = animation_output(context.scene)
        target.parent.mkdir(parents=True, exist_ok=True)
        Path(video).replace(target)
        return f"Saved the backend's animation ({len(runner.options['tracks']['frames'])} frames) to {target}"


classes = (INVERTAVATAR_OT_bake_neural, INVERTAVATAR_OT_render_animation_backend)
