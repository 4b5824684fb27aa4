"""The InvertAvatar render engine: the backend draws the avatar, in the viewport, on F12 and for animations.

Select "InvertAvatar" as the render engine. Its one setting (Render Properties › InvertAvatar) is the renderer:
*Neural* (the prior with the avatar's inversion state), *Albedo* (the fitted mesh with its fused texture) or
*Automatic* (neural when the avatar has a neural state). Every picture is a ``POST /v1/avatars/{id}/render`` with
the frame's ARKit values, head pose and gaze and the camera in the avatar's frame, so it lines up with the scene.

* **F12 / Render Animation**: the scene camera at the output resolution; Blender calls :meth:`render` per frame
  and writes the frames where its output settings say. The request runs in a thread so Esc cancels at once.
* **Viewport** (Rendered shading): ``view_draw`` never waits on the network. It queues a request when the view,
  the frame, a slider or the pose changed (the newest request wins, stale ones are dropped) and draws the last
  picture until the next arrives. When the backend is slow (the neural renderer on a CPU) the viewport asks for a
  smaller picture and fewer neural rays, and says so.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
import weakref

import bpy
import numpy as np

from .core import errors as E
from .core.arkit import ARKIT_NAMES
from .core.axes import points_to_backend, quat_to_matrix, quats_in_frame, quats_to_backend
from .core.camera import render_camera
from .core.errors import AddonError
from .core.png import png_size
from .core.preview_queue import PreviewQueue
from .preferences import current_settings
from .scene.actions import owner_fcurves

_KEY_PATH = re.compile(r'^key_blocks\["(.+)"\]\.value$')
RENDERERS = {"AUTO": None, "NEURAL": "neural", "ALBEDO": "albedo"}
# Viewport: above these seconds per picture, ask for half / a quarter of the viewport's pixels.
SLOW_SECONDS, VERY_SLOW_SECONDS = 0.4, 1.5
_queues: "weakref.WeakSet[PreviewQueue]" = weakref.WeakSet()


def expression_at(head: bpy.types.Object, frame: float) -> dict[str, float]:
    """ARKit values of ``head`` at ``frame``: the animated value where keyed, the slider value otherwise."""
    blocks = head.data.shape_keys.key_blocks
    values = {name: float(blocks[name].value) for name in ARKIT_NAMES if name in blocks}
    for fcurve in owner_fcurves(head.data.shape_keys):
        match = _KEY_PATH.match(fcurve.data_path)
        if match and match.group(1) in values and not fcurve.mute:
            values[match.group(1)] = float(np.clip(fcurve.evaluate(frame), 0.0, 1.0))
    return values


def _channel_at(rig: bpy.types.Object, bone: str, prop: str, frame: float) -> np.ndarray:
    """A pose bone's ``prop`` at ``frame``: keyed channels evaluated there, the current value otherwise."""
    value = np.array(getattr(rig.pose.bones[bone], prop), dtype=np.float64)
    path = f'pose.bones["{bone}"].{prop}'
    for fcurve in owner_fcurves(rig):
        if fcurve.data_path == path and not fcurve.mute:
            value[fcurve.array_index] = fcurve.evaluate(frame)
    return value


def _bone_rotation(rig: bpy.types.Object, bone: str, frame: float) -> np.ndarray:
    quat = _channel_at(rig, bone, "rotation_quaternion", frame)
    rest = np.array(rig.data.bones[bone].matrix_local.to_3x3(), dtype=np.float64)
    armature_q = quats_in_frame(quat, rest.T)  # bone-local rotation back to armature (Blender) axes
    return quats_to_backend(armature_q / np.linalg.norm(armature_q))


def head_rotation_at(rig: bpy.types.Object | None, frame: float) -> list[float]:
    """The head bone's rotation at ``frame`` as a quaternion [w, x, y, z] in backend axes."""
    if rig is None or "head" not in rig.pose.bones:
        return [1.0, 0.0, 0.0, 0.0]
    return _bone_rotation(rig, "head", frame).tolist()


def head_translation_at(rig: bpy.types.Object | None, frame: float) -> list[float]:
    """The head bone's offset at ``frame`` in metres, backend axes (tracks.json's ``head_translation``)."""
    if rig is None or "head" not in rig.pose.bones:
        return [0.0, 0.0, 0.0]
    rest = np.array(rig.data.bones["head"].matrix_local.to_3x3(), dtype=np.float64)
    return points_to_backend(rest @ _channel_at(rig, "head", "location", frame)).tolist()


def gaze_at(rig: bpy.types.Object | None, frame: float) -> dict[str, list[float]] | None:
    """Per-eye [pitch, yaw] (radians, tracks.json convention) from the eye bones at ``frame``."""
    if rig is None:
        return None
    gaze = {}
    for eye in ("eye_L", "eye_R"):
        if eye in rig.pose.bones:
            direction = quat_to_matrix(_bone_rotation(rig, eye, frame)) @ np.array([0.0, 0.0, 1.0])
            gaze[eye] = [float(math.asin(np.clip(direction[1], -1, 1))), float(math.atan2(direction[0], direction[2]))]
    return gaze or None


def find_head(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer | None) -> bpy.types.Object | None:
    """The avatar to draw: the active object when it is a backend avatar's head, else the first visible one."""
    active = view_layer.objects.active if view_layer is not None else None
    candidates = ([active] if active is not None else []) + list(scene.objects)
    for obj in candidates:
        if obj.type == "MESH" and obj.invertavatar.role == "HEAD" and obj.invertavatar.avatar_id:
            if obj is active or not obj.hide_render:
                return obj
    return None


def frame_request(scene: bpy.types.Scene, head: bpy.types.Object, frame: float, camera: dict, width: int,
                  height: int) -> dict:
    """Everything a render request says about one picture (``BackendClient.render`` keyword arguments)."""
    rig = head.parent if head.parent is not None and head.parent.type == "ARMATURE" else None
    return {"arkit": expression_at(head, frame), "head_rotation": head_rotation_at(rig, frame),
            "head_translation": head_translation_at(rig, frame), "gaze": gaze_at(rig, frame),
            "renderer": RENDERERS[scene.invertavatar.renderer], "camera": camera, "width": int(width),
            "height": int(height)}


def _no_avatar() -> AddonError:
    return AddonError("no_avatar", "No InvertAvatar head made by a backend is in the scene.",
                      "Reconstruct an avatar first (imported bundles have no backend avatar to render).")


def _matrix(m) -> np.ndarray:
    return np.array([list(row) for row in m], dtype=np.float64)


def _png_pixels(png: bytes) -> tuple[np.ndarray, int, int]:
    """RGBA float pixels (bottom row first, as Blender stores them) of a PNG, via a temporary image."""
    handle, path = tempfile.mkstemp(suffix=".png", prefix="invertavatar-preview-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(png)
        image = bpy.data.images.load(path, check_existing=False)
        try:
            width, height = image.size
            pixels = np.empty(width * height * 4, np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
    finally:
        os.unlink(path)
    return pixels, width, height


class INVERTAVATAR_RenderEngine(bpy.types.RenderEngine):
    """Draws the avatar on the backend with the neural or the albedo renderer."""

    bl_idname = "INVERTAVATAR_PREVIEW"
    bl_label = "InvertAvatar"
    bl_use_preview = False
    bl_use_postprocess = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._queue: PreviewQueue | None = None
        self._texture = None
        self._drawn_size = (0, 0)

    # ------------------------------------------------------------------------------------------- F12 / animation
    def render(self, depsgraph: bpy.types.Depsgraph) -> None:
        scene = depsgraph.scene
        scale = scene.render.resolution_percentage / 100.0
        width, height = int(scene.render.resolution_x * scale), int(scene.render.resolution_y * scale)
        result = self.begin_result(0, 0, width, height)
        cancelled = False
        try:
            cancelled = not self._render_into(result, scene, depsgraph, width, height)
        except AddonError as exc:
            self.report({"ERROR"}, str(exc))
            self.error_set(str(exc))
        finally:
            self.end_result(result, cancel=cancelled)

    def _render_into(self, result, scene, depsgraph, width: int, height: int) -> bool:
        head = find_head(scene, depsgraph.view_layer)
        if head is None:
            raise _no_avatar()
        if scene.camera is None:
            raise AddonError(E.BAD_INPUT, "The scene has no camera.", "Add a camera and make it the scene camera.")
        projection = scene.camera.calc_matrix_camera(depsgraph, x=width, y=height,
                                                     scale_x=scene.render.pixel_aspect_x,
                                                     scale_y=scene.render.pixel_aspect_y)
        camera = render_camera(_matrix(projection), _matrix(scene.camera.matrix_world), _matrix(head.matrix_world),
                               width, height)
        request = frame_request(scene, head, float(scene.frame_current), camera, width, height)
        self.update_stats("", f"InvertAvatar: frame {scene.frame_current}, waiting for the backend")
        client = current_settings().client()  # bpy is read here, on the main thread; the thread only talks HTTP
        answer = self._wait(lambda: client.render(head.invertavatar.avatar_id, **request))
        if answer is None:
            return False  # Esc
        png, renderer = answer
        if png_size(png) != (width, height):
            raise AddonError("bad_response", f"The backend rendered {png_size(png)} instead of {(width, height)}.",
                             "Update the backend.")
        handle, path = tempfile.mkstemp(suffix=".png", prefix="invertavatar-render-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(png)
            result.layers[0].load_from_file(path)  # a plain image goes into the layer (RenderResult takes EXR)
        finally:
            os.unlink(path)
        self.update_stats("", f"InvertAvatar: frame {scene.frame_current} drawn by the {renderer} renderer")
        self.update_progress(1.0)
        return True

    def _wait(self, call):
        """Run ``call`` in a thread, checking Esc (``test_break``) meanwhile; None when cancelled."""
        box: dict = {}

        def run() -> None:
            try:
                box["value"] = call()
            except BaseException as exc:  # handed to the main thread
                box["error"] = exc

        worker = threading.Thread(target=run, name="invertavatar-render", daemon=True)
        worker.start()
        while worker.is_alive():
            if self.test_break():
                return None  # the request finishes in the background; its answer is dropped
            worker.join(0.05)
        if "error" in box:
            raise box["error"]
        return box["value"]

    # ------------------------------------------------------------------------------------------------ viewport
    def view_update(self, context: bpy.types.Context, depsgraph: bpy.types.Depsgraph) -> None:
        """Something in the scene changed: the next draw compares its request with the last one."""
        self.tag_redraw()

    def _preview_queue(self) -> PreviewQueue:
        if self._queue is None:
            def render(job: tuple) -> tuple[bytes, str]:
                client, avatar_id, fields = job  # the client was made on the main thread (it reads bpy)
                return client.render(avatar_id, **fields)

            self._queue = PreviewQueue(render)
            _queues.add(self._queue)
        return self._queue

    def _viewport_scale(self, queue: PreviewQueue) -> float:
        """Fraction of the viewport's pixels to ask for, from the time the last picture took.

        Decided once per new picture, with hysteresis: a slow picture lowers the scale at once, but it only rises
        again when a picture at the lower scale came back in a quarter of the slow limit (else it would flip
        between the two every picture).
        """
        result = queue.latest()
        scale = getattr(self, "_scale", 1.0)
        if result is None or result.serial == getattr(self, "_scaled_serial", None):
            return scale
        self._scaled_serial = result.serial
        if result.seconds >= VERY_SLOW_SECONDS:
            scale = 0.25
        elif result.seconds >= SLOW_SECONDS:
            scale = min(scale, 0.5)
        elif result.seconds < SLOW_SECONDS / 4:
            scale = min(1.0, scale * 2)
        self._scale = scale
        return scale

    def view_draw(self, context: bpy.types.Context, depsgraph: bpy.types.Depsgraph) -> None:
        scene = depsgraph.scene
        region, view = context.region, context.region_data
        queue = self._preview_queue()
        message = ""
        try:
            head = find_head(scene, depsgraph.view_layer)
            if head is None:
                raise _no_avatar()
            scale = self._viewport_scale(queue)
            width = max(16, min(2048, int(region.width * scale)))
            height = max(16, min(2048, int(region.height * scale)))
            camera = render_camera(_matrix(view.window_matrix), _matrix(view.view_matrix.inverted()),
                                   _matrix(head.matrix_world), width, height)
            request = frame_request(scene, head, float(scene.frame_current), camera, width, height)
            if scale < 1.0:
                # Fewer rays and no super-resolution: at the official size on a CPU the SR costs most of a frame.
                request["neural_resolution"] = scene.invertavatar.viewport_neural_resolution or None
                request["super_resolution"] = False
                message = (f"slow backend ({queue.last_seconds:.1f} s a picture): "
                           f"1/{round(1 / scale)} resolution, raw neural render")
            avatar_id = head.invertavatar.avatar_id
            key = json.dumps([avatar_id, request], sort_keys=True)
            if key != getattr(self, "_last_key", None):
                self._last_key = key
                queue.request(key, (current_settings().client(), avatar_id, request))
        except AddonError as exc:
            message = str(exc)
        if queue.error is not None:
            message = str(queue.error)
        fresh = queue.take_new()
        if fresh is not None:
            self._upload(fresh.png)
            self._renderer = fresh.renderer
        self._draw(region, scene, message)

    def _upload(self, png: bytes) -> None:
        import gpu

        pixels, width, height = _png_pixels(png)
        buffer = gpu.types.Buffer("FLOAT", width * height * 4, pixels)
        self._texture = gpu.types.GPUTexture((width, height), format="RGBA16F", data=buffer)
        self._drawn_size = (width, height)

    def _draw(self, region, scene, message: str) -> None:
        import blf
        import gpu
        from gpu_extras.presets import draw_texture_2d

        if self._texture is not None:
            gpu.state.blend_set("ALPHA_PREMULT")
            draw_texture_2d(self._texture, (0, 0), region.width, region.height)
            gpu.state.blend_set("NONE")
        label = f"InvertAvatar · {getattr(self, '_renderer', '') or 'waiting for the backend'}"
        blf.size(0, 12)
        blf.position(0, 12, region.height - 22, 0)
        blf.draw(0, label + (f" · {message}" if message else ""))


class INVERTAVATAR_PT_render(bpy.types.Panel):
    """Render Properties › InvertAvatar: the renderer the engine asks the backend for."""

    bl_label = "InvertAvatar"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    COMPAT_ENGINES = {"INVERTAVATAR_PREVIEW"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.engine in cls.COMPAT_ENGINES

    def draw(self, context: bpy.types.Context) -> None:
        props = context.scene.invertavatar
        self.layout.prop(props, "renderer", expand=True)
        self.layout.prop(props, "viewport_neural_resolution")


def _redraw_when_ready() -> float:
    """Timer: a preview picture arrived in a worker thread → redraw the rendered viewports (main thread only)."""
    if any(queue.has_new() or queue.error for queue in list(_queues)):
        for window in getattr(bpy.context.window_manager, "windows", []):
            for area in window.screen.areas:
                if area.type == "VIEW_3D":
                    area.tag_redraw()
    return 0.1


def _compatible_panels() -> list:
    """Built-in panels that make sense for this engine (output/format settings)."""
    keep = ("RENDER_PT_format", "RENDER_PT_frame_range", "RENDER_PT_output", "RENDER_PT_color_management")
    return [getattr(bpy.types, name) for name in keep if hasattr(bpy.types, name)]


def register() -> None:
    bpy.utils.register_class(INVERTAVATAR_RenderEngine)
    bpy.utils.register_class(INVERTAVATAR_PT_render)
    for panel in _compatible_panels():
        if hasattr(panel, "COMPAT_ENGINES"):
            panel.COMPAT_ENGINES.add(INVERTAVATAR_RenderEngine.bl_idname)
    if not bpy.app.background and not bpy.app.timers.is_registered(_redraw_when_ready):
        bpy.app.timers.register(_redraw_when_ready, first_interval=0.5, persistent=True)


def unregister() -> None:
    if bpy.app.timers.is_registered(_redraw_when_ready):
        bpy.app.timers.unregister(_redraw_when_ready)
    for queue in list(_queues):
        queue.stop(0.1)
    for panel in _compatible_panels():
        if hasattr(panel, "COMPAT_ENGINES"):
            panel.COMPAT_ENGINES.discard(INVERTAVATAR_RenderEngine.bl_idname)
    bpy.utils.unregister_class(INVERTAVATAR_PT_render)
    bpy.utils.unregister_class(INVERTAVATAR_RenderEngine)
