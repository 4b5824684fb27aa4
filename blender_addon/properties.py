"""Add-on data: one PointerProperty per ID type (Object, Scene) plus transient job state on the WindowManager."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

MODES = (
    ("fit", "Fit", "Fit the parametric head and bake a texture (fast, works on CPU)"),
    ("neural", "Neural", "Also run incremental GAN inversion (needs the neural checkpoint on the backend)"),
)


def _texture_source_changed(props, context) -> None:
    from .scene.material import set_texture_source

    obj = props.id_data
    for slot in getattr(obj, "material_slots", ()):
        set_texture_source(slot.material, props.texture_source)


def _import_hair_changed(props, context) -> None:
    from .scene.hair import show_hair

    show_hair(context.scene, props.import_hair)


def _hair_density_changed(props, context) -> None:
    from .scene.hair import set_hair_density

    for obj in context.scene.objects:
        if obj.type == "CURVES" and obj.invertavatar.role == "HAIR":
            set_hair_density(obj, props.hair_density)


class INVERTAVATAR_PG_object(bpy.types.PropertyGroup):
    """Links an object to its avatar on the backend."""

    role: EnumProperty(name="Role", items=(("NONE", "None", ""), ("HEAD", "Head", "The head mesh"),
                                           ("RIG", "Rig", "The head armature"),
                                           ("HAIR", "Hair", "A hair Curves object on the head")), default="NONE")
    avatar_id: StringProperty(name="Avatar ID", description="The avatar's id on the backend")
    backend_url: StringProperty(name="Backend", description="The backend that made this avatar")
    head_model: StringProperty(name="Head model")
    mode: StringProperty(name="Mode")
    coverage: FloatProperty(name="Coverage", description="Fraction of the texture seen in the inputs",
                            subtype="FACTOR", min=0.0, max=1.0)
    frames_used: IntProperty(name="Frames used")
    texture_source: EnumProperty(
        name="Texture", description="Which texture the head's material shows (and FBX/glTF exports carry)",
        items=(("PHOTO", "Photo texture", "The texture fused from the photos or clip"),
               ("NEURAL", "Neural bake", "The neural avatar rendered from views around the head and fused into the "
                                         "same UV layout (neural avatars only)")),
        default="PHOTO", update=_texture_source_changed)


class INVERTAVATAR_PG_input(bpy.types.PropertyGroup):
    """One photo or clip to upload."""

    filepath: StringProperty(name="File", subtype="FILE_PATH")


class INVERTAVATAR_PG_scene(bpy.types.PropertyGroup):
    """Per-scene reconstruction settings (the backend URL lives in the preferences, not here)."""

    inputs: CollectionProperty(type=INVERTAVATAR_PG_input)
    input_index: IntProperty(name="Selected input")
    mode: EnumProperty(name="Mode", items=MODES, default="fit")
    head_model: EnumProperty(name="Head model", items=(
        ("ict", "ICT Face Model", "ICT FaceKit light model (default, works offline)"),
        ("faceverse", "FaceVerse", "FaceVerse model (files you downloaded; needed for neural mode)")), default="ict")
    every: IntProperty(name="Every", description="Use every n-th frame of a clip", default=1, min=1, max=100)
    max_frames: IntProperty(name="Max frames", description="Stop after this many frames of a clip", default=64,
                            min=1, max=100000)
    renderer: EnumProperty(name="Renderer", description="Which renderer the InvertAvatar render engine uses", items=(
        ("AUTO", "Automatic", "Neural when the avatar has a neural state, else albedo"),
        ("NEURAL", "Neural", "The neural prior with the avatar's inversion state (slow on a CPU backend)"),
        ("ALBEDO", "Albedo", "The fitted mesh with its fused photo texture")), default="AUTO")
    viewport_neural_resolution: IntProperty(
        name="Slow Viewport Rays", description="Neural rays per side when the backend is slow in the viewport "
        "(0: the prior's own)", default=32, min=0, max=512)
    animate_on_import: BoolProperty(name="Key the clip's performance",
                                    description="When the input is a clip, key its expressions and head pose",
                                    default=True)
    import_hair: BoolProperty(
        name="Hair", description="Build the bundle's hair as Blender hair (Curves on the head, densified by "
        "Blender's procedural hair nodes) when importing; off, new reconstructions are made without hair and the "
        "hair of avatars in the scene is hidden",
        default=True, update=_import_hair_changed)
    hair_density: FloatProperty(
        name="Hair Density", description="Hair strands per square centimetre that Blender grows between the "
        "bundle's guide curves (0: the density the bundle suggests); lower is faster in the viewport",
        default=0.0, min=0.0, soft_max=200.0, update=_hair_density_changed)
    accept_any_face: BoolProperty(name="Accept any face",
                                  description="Build even from a face the backend does not take for a human's "
                                              "(e.g. an animal); the avatar's bundle says so", default=False)


class INVERTAVATAR_PG_job(bpy.types.PropertyGroup):
    """Transient job and status state (WindowManager: not saved in the .blend)."""

    running: BoolProperty(name="Running")
    progress: FloatProperty(name="Progress", subtype="FACTOR", min=0.0, max=1.0)
    stage: StringProperty(name="Stage")
    status: StringProperty(name="Status")
    status_is_error: BoolProperty(name="Status is an error")
    backend_info: StringProperty(name="Backend", description="Result of the last connection test")


classes = (INVERTAVATAR_PG_object, INVERTAVATAR_PG_input, INVERTAVATAR_PG_scene, INVERTAVATAR_PG_job)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Object.invertavatar = PointerProperty(type=INVERTAVATAR_PG_object)
    bpy.types.Scene.invertavatar = PointerProperty(type=INVERTAVATAR_PG_scene)
    bpy.types.WindowManager.invertavatar = PointerProperty(type=INVERTAVATAR_PG_job)


def unregister() -> None:
    del bpy.types.WindowManager.invertavatar
    del bpy.types.Scene.invertavatar
    del bpy.types.Object.invertavatar
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)


def set_status(context: bpy.types.Context, text: str, error: bool = False) -> None:
    """Write the persistent status line shown in the sidebar (reports scroll away; this stays)."""
    job = context.window_manager.invertavatar
    job.status = text
    job.status_is_error = error
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES"):
                area.tag_redraw()
