"""Connection operators: test the backend, start and stop a local one."""

from __future__ import annotations

import bpy

from ..core.backend_process import LocalBackend, load_config
from ..core.errors import AddonError
from ..preferences import current_settings, user_dir
from ..properties import set_status

_local_backend: LocalBackend | None = None


def stop_local_backend() -> None:
    """Stop the backend process this add-on started, if any (called on unregister)."""
    global _local_backend
    if _local_backend is not None:
        _local_backend.stop()
        _local_backend = None


def _installed_models(models) -> list[str]:
    """Names of installed models from the health answer ({name: {"installed": bool, ...}} or a list)."""
    if isinstance(models, list):
        return [str(m) for m in models]
    if isinstance(models, dict):
        return [name for name, info in models.items()
                if (info.get("installed") if isinstance(info, dict) else bool(info))]
    return []


class INVERTAVATAR_OT_test_connection(bpy.types.Operator):
    """Ask the backend for its health: shows backend and API versions and the compute device"""

    bl_idname = "invertavatar.test_connection"
    bl_label = "Test Connection"
    bl_description = "Ask the backend for its versions and device (refuses a remote URL while online access is off)"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not context.window_manager.invertavatar.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = current_settings(context)
        job = context.window_manager.invertavatar
        try:
            health = settings.client().health()
        except AddonError as exc:
            job.backend_info = ""
            set_status(context, str(exc), error=True)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        models = health.get("models")
        model_text = ", ".join(_installed_models(models))
        job.backend_info = (f"Backend {health.get('backend_version', '?')}, API {health.get('api_version')}, "
                            f"device {health.get('device', '?')}" + (f", models: {model_text}" if model_text else ""))
        set_status(context, f"Connected to {settings.url}")
        self.report({"INFO"}, job.backend_info)
        return {"FINISHED"}


class INVERTAVATAR_OT_start_backend(bpy.types.Operator):
    """Start the local backend with the command install.py recorded"""

    bl_idname = "invertavatar.start_backend"
    bl_label = "Start Backend"
    bl_description = "Start the local backend (command from backend.json or $INVERTAVATAR_BACKEND_CMD) and wait for it"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return current_settings(context).mode == "LOCAL" and not (_local_backend and _local_backend.running())

    def execute(self, context: bpy.types.Context) -> set[str]:
        global _local_backend
        try:
            config = load_config(user_dir())
            backend = LocalBackend(config, user_dir() / "logs" / "backend.log")
            health = backend.start()
        except AddonError as exc:
            set_status(context, str(exc), error=True)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        _local_backend = backend if backend.process is not None else None
        set_status(context, f"Backend {health.get('backend_version', '?')} is running at {config.url}")
        return {"FINISHED"}


class INVERTAVATAR_OT_stop_backend(bpy.types.Operator):
    """Stop the local backend that this add-on started"""

    bl_idname = "invertavatar.stop_backend"
    bl_label = "Stop Backend"
    bl_description = "Stop the local backend process started from Blender (a backend you started yourself is kept)"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _local_backend is not None and _local_backend.running()

    def execute(self, context: bpy.types.Context) -> set[str]:
        stop_local_backend()
        set_status(context, "Local backend stopped")
        return {"FINISHED"}


classes = (INVERTAVATAR_OT_test_connection, INVERTAVATAR_OT_start_backend, INVERTAVATAR_OT_stop_backend)
