"""The sidebar panels draw without errors and show what the artist needs (drawn into a recording layout, since
headless Blender has no screen to draw on)."""

from types import SimpleNamespace

import addon_env


class Layout:
    """Records operator buttons, properties and labels; row/column/box return the same recorder."""

    def __init__(self):
        self.operators, self.props, self.labels, self.progress_bars = [], [], [], []

    def row(self, **_):
        return self

    column = box = row

    def operator(self, idname, **kwargs):
        self.operators.append(idname)
        return SimpleNamespace()

    def prop(self, data, name, **kwargs):
        self.props.append((data, name, kwargs.get("text")))

    def label(self, text="", **_):
        self.labels.append(text)

    def progress(self, factor=0.0, type="BAR", text=""):
        self.progress_bars.append((factor, text))

    def template_list(self, *args, **kwargs):
        self.props.append(("template_list", args[0], None))


def _draw(bpy, name):
    panel = getattr(addon_env.addon_module("ui.panels"), name)
    layout = Layout()
    panel.draw(SimpleNamespace(layout=layout), bpy.context)
    return layout


def test_panels_without_an_avatar(clean_scene):
    bpy = clean_scene
    assert "invertavatar.test_connection" in _draw(bpy, "INVERTAVATAR_PT_main").operators
    assert ("template_list", "INVERTAVATAR_UL_inputs", None) in _draw(bpy, "INVERTAVATAR_PT_input").props
    reconstruct = _draw(bpy, "INVERTAVATAR_PT_reconstruct")
    assert "invertavatar.reconstruct" in reconstruct.operators and "invertavatar.cancel" not in reconstruct.operators
    assert "Select an InvertAvatar head or rig" in _draw(bpy, "INVERTAVATAR_PT_avatar").labels
    assert _draw(bpy, "INVERTAVATAR_PT_export").operators == ["invertavatar.export", "invertavatar.export"]


def test_panels_with_an_avatar_and_a_running_job(clean_scene, ict_bundle_dir):
    bpy = clean_scene
    bpy.ops.invertavatar.import_bundle(filepath=str(ict_bundle_dir / "manifest.json"))
    expressions = _draw(bpy, "INVERTAVATAR_PT_expressions")
    sliders = [text for _, name, text in expressions.props if name == "value"]
    assert len(sliders) == 52 and sliders[0] == "browDownLeft"
    avatar = _draw(bpy, "INVERTAVATAR_PT_avatar")
    assert avatar.progress_bars == [(bpy.context.active_object.invertavatar.coverage, "Texture coverage 41%")]
    assert any("tongueOut" in text for text in avatar.labels)
    job = bpy.context.window_manager.invertavatar
    job.running, job.progress, job.stage = True, 0.25, "track"
    reconstruct = _draw(bpy, "INVERTAVATAR_PT_reconstruct")
    assert reconstruct.progress_bars == [(0.25, "track: 25%")] and "invertavatar.cancel" in reconstruct.operators
    job.status, job.status_is_error = "No face was found.", True
    assert "No face was found." in _draw(bpy, "INVERTAVATAR_PT_main").labels


def test_preferences_draw_both_modes(clean_scene):
    bpy = clean_scene
    prefs_class = addon_env.addon_module("preferences").INVERTAVATAR_AddonPreferences
    for mode, expected in (("LOCAL", "invertavatar.start_backend"), ("REMOTE", "invertavatar.test_connection")):
        layout = Layout()
        prefs_class.draw(SimpleNamespace(layout=layout, backend_mode=mode), bpy.context)
        assert expected in layout.operators and "invertavatar.test_connection" in layout.operators
        assert ("remote_url" in [name for _, name, _ in layout.props]) == (mode == "REMOTE")
