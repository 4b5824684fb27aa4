"""A clip's performance (``tracks.json``) as keyframes: one action on the shape keys, one on the armature."""

from __future__ import annotations

import bpy
import numpy as np

from ..core.arkit import ARKIT_GROUPS, ARKIT_NAMES
from ..core.axes import fps_to_blender, gaze_to_quats, points_to_blender, quats_in_frame, quats_to_blender
from ..core.bundle import Tracks
from ..core.errors import BAD_INPUT, AddonError
from .actions import new_action, write_keys
from .rig import bone_rest_frames

_GROUP_OF = {name: group for group, names in ARKIT_GROUPS for name in names}


def source_frames_to_scene(tracks: Tracks, frame_start: int = 1) -> np.ndarray:
    """Scene frame of each tracked source frame: source frame 0 lands on ``frame_start``."""
    return (tracks.indices + frame_start).astype(np.float64)


def _continuous(quats: np.ndarray) -> np.ndarray:
    """Flip quaternion signs so neighbours lie in one hemisphere (no spin when interpolating)."""
    out = quats.copy()
    for i in range(1, len(out)):
        if np.dot(out[i], out[i - 1]) < 0.0:
            out[i] = -out[i]
    return out


def _key_bone(target, bone: str, prop: str, frames: np.ndarray, values: np.ndarray) -> None:
    path = f'pose.bones["{bone}"].{prop}'
    for axis in range(values.shape[1]):
        write_keys(target.ensure_fcurve(path, axis, group=bone), frames, values[:, axis])


def apply_tracks(scene: bpy.types.Scene, mesh_obj: bpy.types.Object, arm_obj: bpy.types.Object | None,
                 tracks: Tracks, name: str, frame_start: int = 1, set_scene: bool = True) -> list[bpy.types.Action]:
    """Key the ARKit weights on the shape keys and head pose + gaze on the armature; returns the new actions.

    Keys are linear, written in bulk. With ``set_scene`` the scene's frame rate and range follow the clip.
    """
    if len(tracks.indices) == 0:
        raise AddonError(BAD_INPUT, "The clip's tracks contain no frames with a face.",
                         "Use a clip in which the face is visible.")
    key = mesh_obj.data.shape_keys
    if key is None:
        raise AddonError(BAD_INPUT, f"{mesh_obj.name} has no shape keys.", "Select an InvertAvatar head.")
    frames = source_frames_to_scene(tracks, frame_start)
    shape_target = new_action(key, f"{name}_expressions")
    for i, shape in enumerate(ARKIT_NAMES):
        if shape in key.key_blocks:
            fcurve = shape_target.ensure_fcurve(f'key_blocks["{shape}"].value', 0, group=_GROUP_OF.get(shape))
            write_keys(fcurve, frames, tracks.arkit[:, i])
    actions = [shape_target.action]
    if arm_obj is not None:
        rest = bone_rest_frames(arm_obj)
        arm_target = new_action(arm_obj, f"{name}_pose")
        head_q = quats_in_frame(quats_to_blender(tracks.head_rotation), rest["head"])
        _key_bone(arm_target, "head", "rotation_quaternion", frames, _continuous(head_q))
        head_t = points_to_blender(tracks.head_translation).astype(np.float64) @ rest["head"]
        _key_bone(arm_target, "head", "location", frames, head_t)
        for e, eye in enumerate(("eye_L", "eye_R")):
            eye_q = quats_in_frame(quats_to_blender(gaze_to_quats(tracks.gaze[:, e])), rest[eye])
            _key_bone(arm_target, eye, "rotation_quaternion", frames, _continuous(eye_q))
        actions.append(arm_target.action)
    for action in actions:
        action["invertavatar_source"] = tracks.source
        if tracks.fps:
            action["invertavatar_source_fps"] = tracks.fps
    if set_scene:
        if tracks.fps:
            scene.render.fps, scene.render.fps_base = fps_to_blender(tracks.fps)
        scene.frame_start = int(frames[0])
        scene.frame_end = max(int(frames[-1]), int(frames[0]) + 1)
    return actions
