"""Job operators: Reconstruct, Refine, Animate (one shared flow) and Cancel.

From the UI a modal operator runs the job in a worker thread (``JobRunner.start``) and polls it on a timer; the
scene is built inside ``modal()`` so Blender records one undo step. In ``--background`` runs and scripts
``execute()`` runs the same job synchronously. A failed or cancelled job never touches the scene.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import bpy

from ..core import errors as E
from ..core.bundle import read_bundle
from ..core.errors import AddonError
from ..core.jobs import JobEvent, JobRunner
from ..preferences import current_settings, user_dir
from ..properties import set_status
from ..scene.animation import apply_tracks
from ..scene.avatar import build_avatar, find_avatar
from ..scene.hair import hair_objects

_active: JobRunner | None = None


def active_runner() -> JobRunner | None:
    """The job currently running from this Blender session, if any."""
    return _active


def cancel_active_job() -> None:
    """Ask the running job (if any) to cancel; used by the Cancel button and on unregister."""
    if _active is not None:
        _active.cancel()


def _show_progress(context: bpy.types.Context, event: JobEvent) -> None:
    job = context.window_manager.invertavatar
    job.progress = max(0.0, min(1.0, event.progress))
    job.stage = event.stage
    set_status(context, event.message or event.stage)


class _JobFlow:
    """Shared body of the job operators; subclasses choose the inputs, the options and what to build."""

    bl_options = {"REGISTER", "UNDO"}
    runner_class = JobRunner  # the neural bake swaps in its own (no upload)

    def _inputs(self, context: bpy.types.Context) -> list[Path]:
        inputs = [Path(bpy.path.abspath(i.filepath)) for i in context.scene.invertavatar.inputs]
        if not inputs:
            raise AddonError(E.BAD_INPUT, "No photos or clip to upload.", "Add them in the Input panel.")
        return inputs

    def _refine_id(self, context: bpy.types.Context) -> str | None:
        return None

    def _options(self, context: bpy.types.Context) -> dict:
        props = context.scene.invertavatar
        options = {"mode": props.mode, "head_model": props.head_model, "every": props.every,
                   "max_frames": props.max_frames}
        if props.accept_any_face:  # only when asked: older backends do not know the option
            options["accept_any_face"] = True
        if not props.import_hair:  # the same: hair is the backend's default, so only "no hair" is sent
            options["hair"] = False
        return options

    def _build(self, context: bpy.types.Context, runner: JobRunner, bundle_dir: Path) -> str:
        raise NotImplementedError

    # -- shared flow --------------------------------------------------------------------------------------
    def _prepare(self, context: bpy.types.Context) -> JobRunner:
        global _active
        if _active is not None and _active.is_alive():
            raise AddonError(E.BAD_INPUT, "Another reconstruction is running.", "Wait for it or cancel it.")
        settings = current_settings(context)
        self._url = settings.url
        runner_class = getattr(self, "runner_class", JobRunner)
        runner = runner_class(settings.client(), self._inputs(context), self._options(context), user_dir() / "cache",
                              avatar_id=self._refine_id(context), job_timeout=settings.job_timeout)
        _active = runner
        job = context.window_manager.invertavatar
        job.running, job.progress, job.stage = True, 0.0, "connect"
        set_status(context, "Starting…")
        return runner

    def _fail(self, context: bpy.types.Context, exc: AddonError) -> set[str]:
        context.window_manager.invertavatar.running = False
        set_status(context, str(exc), error=exc.code != E.CANCELLED)
        self.report({"WARNING"} if exc.code == E.CANCELLED else {"ERROR"}, str(exc))
        return {"CANCELLED"}

    def _complete(self, context: bpy.types.Context, runner: JobRunner, bundle_dir: Path) -> set[str]:
        try:
            message = self._build(context, runner, bundle_dir)
        except AddonError as exc:
            return self._fail(context, exc)
        except Exception as exc:  # a bug must not leave the panel stuck in "running"
            traceback.print_exc()
            return self._fail(context, AddonError(E.BAD_RESPONSE, f"Building the avatar failed: {exc!r}.",
                                                  "Please report this with the system console output."))
        job = context.window_manager.invertavatar
        job.running, job.progress = False, 1.0
        set_status(context, message)
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Synchronous path (background mode, scripts, tests)."""
        try:
            runner = self._prepare(context)
            bundle_dir = runner.run(lambda event: _show_progress(context, event))
        except AddonError as exc:
            return self._fail(context, exc)
        except Exception as exc:  # never leave the panel stuck in "running"
            traceback.print_exc()
            return self._fail(context, AddonError(E.BAD_RESPONSE, f"The job failed unexpectedly: {exc!r}.",
                                                  "Please report this with the system console output."))
        return self._complete(context, runner, bundle_dir)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._runner = self._prepare(context)
        except AddonError as exc:
            return self._fail(context, exc)
        self._runner.start()
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _stop_timer(self, context: bpy.types.Context) -> None:
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC" and event.value == "PRESS":
            self._runner.cancel()
            set_status(context, "Cancelling…")
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        for item in self._runner.drain():
            if item.kind == "progress":
                _show_progress(context, item)
            elif item.kind == "error":
                self._stop_timer(context)
                return self._fail(context, item.error)
            elif item.kind == "done":
                self._stop_timer(context)
                return self._complete(context, self._runner, item.bundle_dir)
        return {"RUNNING_MODAL"}

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal operator (e.g. the file is closed): stop polling and cancel the job."""
        self._stop_timer(context)
        self._runner.cancel()
        context.window_manager.invertavatar.running = False


def _with_note(message: str, note: str) -> str:
    """The status line: the result, then what the backend's face check wants the artist to know."""
    return f"{message} — {note}" if note else message


def _avatar_name(context: bpy.types.Context) -> str:
    inputs = context.scene.invertavatar.inputs
    return Path(inputs[0].filepath).stem[:40] if len(inputs) else "Avatar"


class INVERTAVATAR_OT_reconstruct(_JobFlow, bpy.types.Operator):
    """Upload the inputs, reconstruct a head avatar on the backend and build it in the scene"""

    bl_idname = "invertavatar.reconstruct"
    bl_label = "Reconstruct"
    bl_description = ("Upload the photos or clip to the backend and build the rigged, textured avatar "
                      "(Esc or Cancel stops the job)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return len(context.scene.invertavatar.inputs) > 0 and not context.window_manager.invertavatar.running

    def _build(self, context: bpy.types.Context, runner: JobRunner, bundle_dir: Path) -> str:
        bundle = read_bundle(bundle_dir)
        avatar = build_avatar(context, bundle, _avatar_name(context), runner.avatar_id, self._url,
                              animate=context.scene.invertavatar.animate_on_import)
        return _with_note(f"Avatar {avatar.mesh_object} ready (coverage {bundle.coverage:.0%})",
                          "; ".join(n for n in (bundle.face_note, avatar.note) if n))


class INVERTAVATAR_OT_refine(_JobFlow, bpy.types.Operator):
    """Send more photos to improve the selected avatar; the refined version replaces it in view"""

    bl_idname = "invertavatar.refine"
    bl_label = "Refine with Inputs"
    bl_description = ("Update the selected avatar with the photos in the Input list (the backend continues from "
                      "its saved state); the previous version is kept hidden")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head, _ = find_avatar(context.active_object)
        return (head is not None and bool(head.invertavatar.avatar_id) and len(context.scene.invertavatar.inputs) > 0
                and not context.window_manager.invertavatar.running)

    def _refine_id(self, context: bpy.types.Context) -> str | None:
        head, rig = find_avatar(context.active_object)
        self._old = [o.name for o in (head, rig, *hair_objects(head)) if o is not None]
        return head.invertavatar.avatar_id

    def _build(self, context: bpy.types.Context, runner: JobRunner, bundle_dir: Path) -> str:
        bundle = read_bundle(bundle_dir)
        avatar = build_avatar(context, bundle, _avatar_name(context), runner.avatar_id, self._url, animate=False)
        for name in self._old:
            if name in bpy.data.objects:
                bpy.data.objects[name].hide_set(True)
        return _with_note(f"Refined avatar {avatar.mesh_object} ready (coverage {bundle.coverage:.0%})",
                          "; ".join(n for n in (bundle.face_note, avatar.note) if n))


class INVERTAVATAR_OT_animate(_JobFlow, bpy.types.Operator):
    """Track the clip in the Input list and key its performance on the selected avatar"""

    bl_idname = "invertavatar.animate"
    bl_label = "Animate from Clip"
    bl_description = ("Track the clip in the Input list on the backend and key its expressions, head pose and "
                      "gaze on the selected avatar (frame rate from the clip)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        head, _ = find_avatar(context.active_object)
        return (head is not None and len(context.scene.invertavatar.inputs) > 0
                and not context.window_manager.invertavatar.running)

    def _refine_id(self, context: bpy.types.Context) -> str | None:
        head, rig = find_avatar(context.active_object)
        self._target = (head.name, rig.name if rig else "")
        return head.invertavatar.avatar_id or None

    def _build(self, context: bpy.types.Context, runner: JobRunner, bundle_dir: Path) -> str:
        bundle = read_bundle(bundle_dir)
        if bundle.tracks is None or len(bundle.tracks.indices) == 0:
            raise AddonError(E.BAD_BUNDLE, "The backend returned no tracked frames for this clip.",
                             "Use a clip in which the face is visible.")
        head = bpy.data.objects.get(self._target[0])
        rig = bpy.data.objects.get(self._target[1]) if self._target[1] else None
        if head is None:
            raise AddonError(E.BAD_INPUT, "The avatar to animate was deleted.", "Select an avatar and try again.")
        apply_tracks(context.scene, head, rig, bundle.tracks, Path(bundle.tracks.source or "clip").stem)
        return f"Keyed {len(bundle.tracks.indices)} frames on {head.name}"


class INVERTAVATAR_OT_cancel(bpy.types.Operator):
    """Cancel the running reconstruction (the backend stops the job; nothing is added to the scene)"""

    bl_idname = "invertavatar.cancel"
    bl_label = "Cancel"
    bl_description = "Stop the running job on the backend; the scene stays unchanged"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _active is not None and _active.is_alive() and not _active.cancelled

    def execute(self, context: bpy.types.Context) -> set[str]:
        cancel_active_job()
        set_status(context, "Cancelling…")
        return {"FINISHED"}


classes = (INVERTAVATAR_OT_reconstruct, INVERTAVATAR_OT_refine, INVERTAVATAR_OT_animate, INVERTAVATAR_OT_cancel)
