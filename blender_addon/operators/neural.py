"""The neural bake button: re-bake the selected neural avatar's texture on the backend and show it.

The bake is a backend job like a reconstruction (same polling, Esc/Cancel, download); when it is done the new
``neural_baked.png`` replaces the *Neural bake* image of the head's material, which is switched to it.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from ..core import errors as E
from ..core.bundle import read_bundle
from ..core.errors import AddonError
from ..core.jobs import BakeRunner, JobRunner
from ..scene.avatar import find_avatar
from ..scene.material import replace_neural_bake
from .reconstruct import _JobFlow


class INVERTAVATAR_OT_bake_neural(_JobFlow, bpy.types.Operator):
    """Render the neural avatar from views around the head and fuse them into its UV texture"""

    bl_idname = "invertavatar.bake_neural"
    bl_label = "Bake Neural Texture"
    bl_description = ("Bake the neural avatar (front, sides, above, below, back) into the head's texture layout on "
                      "the backend, then show it on the material (neural avatars only; Esc cancels)")
    runner_class = BakeRunner

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head, _ = find_avatar(context.active_object)
        return (head is not None and bool(head.invertavatar.avatar_id) and head.invertavatar.mode == "neural"
                and not context.window_manager.invertavatar.running)

    def _inputs(self, context: bpy.types.Context) -> list[Path]:
        return []

    def _refine_id(self, context: bpy.types.Context) -> str | None:
        head, _ = find_avatar(context.active_object)
        self._head = head.name
        return head.invertavatar.avatar_id

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


classes = (INVERTAVATAR_OT_bake_neural,)
