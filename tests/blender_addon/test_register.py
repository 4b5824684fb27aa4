"""Registration: installed as an extension; unregister leaves nothing behind; every operator has poll + tooltip."""

import addon_env

ALWAYS_AVAILABLE = {"invertavatar.add_inputs", "invertavatar.import_bundle"}  # file choosers: nothing to grey out


def _types(bpy):
    return {name for name in dir(bpy.types) if name.startswith("INVERTAVATAR")}


def _engine_registered():
    return addon_env.addon_module("render_engine").INVERTAVATAR_RenderEngine.is_registered


def _op_registered(bpy, name):
    try:
        getattr(bpy.ops.invertavatar, name).get_rna_type()
    except KeyError:
        return False
    return True


def test_operators_have_poll_and_description(addon):
    import bpy

    for cls in addon_env.addon_module("operators").classes:
        assert cls.bl_idname.startswith("invertavatar.") and cls.__name__.startswith("INVERTAVATAR_OT_"), cls
        assert cls.bl_description.strip(), cls
        own_poll = any("poll" in vars(k) for k in cls.__mro__ if k.__module__.startswith(addon_env.PACKAGE))
        assert own_poll or cls.bl_idname in ALWAYS_AVAILABLE, cls
        assert _op_registered(bpy, cls.bl_idname.split(".")[1])
    assert bpy.ops.invertavatar.reconstruct.get_rna_type().description.startswith("Upload the photos")


def test_unregister_leaves_nothing_and_register_restores(addon):
    import bpy

    ops = [cls.bl_idname.split(".")[1] for cls in addon_env.addon_module("operators").classes]
    before = _types(bpy)
    assert _engine_registered() and hasattr(bpy.types.Scene, "invertavatar")
    addon.unregister()
    try:
        assert _types(bpy) == set()
        assert not _engine_registered()
        for owner in (bpy.types.Scene, bpy.types.Object, bpy.types.WindowManager):
            assert not hasattr(owner, "invertavatar")
        assert not any(_op_registered(bpy, name) for name in ops)
    finally:
        addon.register()
    assert _types(bpy) == before and _engine_registered()


def test_sidebar_tab_and_preferences(addon):
    import bpy

    panels = [p for p in addon_env.addon_module("ui.panels").classes if issubclass(p, bpy.types.Panel)]
    assert {p.bl_category for p in panels} == {"InvertAvatar"}
    assert {p.bl_label for p in panels} >= {"Input", "Reconstruct", "Avatar", "Expressions", "Animate", "Export"}
    prefs = bpy.context.preferences.addons[addon_env.PACKAGE].preferences
    assert prefs.backend_mode == "LOCAL" and prefs.read_timeout > 0
