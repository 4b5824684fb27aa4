"""The one compatibility helper for Blender's action API (legacy actions up to 4.3, slotted actions 4.4+/5.0).

Checked headless on bpy 4.2.0 (legacy), 4.5.15 (slotted, no public channel-bag helper) and 5.0.1.

Blender 5.0 removed ``Action.fcurves``/``Action.groups``: F-curves live in a channel bag per action slot. Every
keyframe the add-on writes goes through ``new_action`` + ``ensure_fcurve`` + ``write_keys`` here.
"""

from __future__ import annotations

import bpy
import numpy as np

try:  # Blender 5.0 (4.4/4.5 only have a private variant)
    from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
except ImportError:
    action_ensure_channelbag_for_slot = None

# Slotted (layered) actions exist from Blender 4.4; 4.2/4.3 only have legacy actions.
SLOTTED = "slots" in bpy.types.Action.bl_rna.properties


def _ensure_channelbag(action: bpy.types.Action, slot):
    """The channel bag holding ``slot``'s F-curves, created in the action's first layer/strip if needed."""
    if action_ensure_channelbag_for_slot is not None:
        return action_ensure_channelbag_for_slot(action, slot)
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


class ActionTarget:
    """An action assigned to one ID, with a place to create F-curves for it."""

    def __init__(self, action: bpy.types.Action, channels) -> None:
        self.action = action
        self._channels = channels  # a channel bag (4.4+) or the action itself (legacy)
        self._groups: dict[str, object] = {}

    def ensure_fcurve(self, data_path: str, index: int = 0, group: str | None = None) -> bpy.types.FCurve:
        """Find or create the F-curve for ``data_path[index]``, optionally in a named channel group."""
        fcurve = self._channels.fcurves.find(data_path, index=index)
        if fcurve is None:
            fcurve = self._channels.fcurves.new(data_path, index=index)
        if group:
            grp = self._groups.get(group)
            if grp is None:
                grp = self._channels.groups.get(group) or self._channels.groups.new(group)
                self._groups[group] = grp
            fcurve.group = grp
        return fcurve

    @property
    def fcurves(self):
        """The F-curves of this target (channel bag F-curves on 4.4+, action F-curves before)."""
        return self._channels.fcurves


def new_action(owner: bpy.types.ID, name: str, replace: bool = True) -> ActionTarget:
    """Create an action for ``owner`` (an Object or a shape-key ``Key``), assign it, and return a target for keys.

    With ``replace`` the owner's previous action is unassigned first (it stays in ``bpy.data`` for the artist).
    """
    anim = owner.animation_data or owner.animation_data_create()
    if replace and anim.action is not None:
        anim.action = None
    action = bpy.data.actions.new(name)
    if SLOTTED:
        id_type = "KEY" if isinstance(owner, bpy.types.Key) else "OBJECT"
        slot = action.slots.new(id_type=id_type, name=owner.name)
        anim.action = action
        anim.action_slot = slot
        channels = _ensure_channelbag(action, slot)
    else:
        anim.action = action
        channels = action
    return ActionTarget(action, channels)


def owner_fcurves(owner: bpy.types.ID) -> list:
    """The F-curves that animate ``owner`` through its assigned action (empty when there is none)."""
    anim = owner.animation_data
    if anim is None or anim.action is None:
        return []
    if SLOTTED:
        if anim.action_slot is None:
            return []
        bags = [bag for layer in anim.action.layers for strip in layer.strips for bag in strip.channelbags
                if bag.slot == anim.action_slot]
        return [fc for bag in bags for fc in bag.fcurves]
    return list(anim.action.fcurves)


_LINEAR = None


def write_keys(fcurve: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Replace ``fcurve``'s keys with linear keys at ``frames`` (bulk ``foreach_set``, no per-key Python calls)."""
    global _LINEAR
    if _LINEAR is None:
        _LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
    n = len(frames)
    points = fcurve.keyframe_points
    if len(points):
        points.clear()
    points.add(n)
    co = np.empty((n, 2), dtype=np.float32)
    co[:, 0] = frames
    co[:, 1] = values
    flat = co.ravel()
    points.foreach_set("co", flat)
    # Handles at the key itself: harmless for LINEAR and keeps exporters that sample Bezier data exact.
    points.foreach_set("handle_left", flat)
    points.foreach_set("handle_right", flat)
    points.foreach_set("interpolation", np.full(n, _LINEAR, dtype=np.int32))
    fcurve.update()
