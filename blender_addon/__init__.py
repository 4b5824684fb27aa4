"""InvertAvatar for Blender: photos or a clip of a face → a rigged, textured, animatable head avatar.

Submodules that use bpy are imported inside ``register()`` so that ``core`` stays importable (and testable)
without Blender.
"""

from __future__ import annotations

_registered: list = []


def register() -> None:
    """Register properties, preferences, operators, panels and the preview render engine."""
    import bpy

    from . import operators, preferences, properties, render_engine
    from .ui import panels

    properties.register()
    for cls in preferences.classes + operators.classes + panels.classes:
        bpy.utils.register_class(cls)
        _registered.append(cls)
    render_engine.register()


def unregister() -> None:
    """Cancel a running job, stop a backend the add-on started, and remove everything ``register()`` added."""
    import bpy

    from . import properties, render_engine
    from .operators import connection, reconstruct

    reconstruct.cancel_active_job()
    connection.stop_local_backend()
    render_engine.unregister()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
    properties.unregister()
