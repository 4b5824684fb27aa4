"""Add-on preferences (backend mode, URL, token, timeouts) and the settings snapshot handed to worker threads."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from . import __package__ as base_package
from .core.backend_process import DEFAULT_URL, load_config, read_token_file
from .core.client import BackendClient, Timeouts, check_online_access
from .core.errors import AddonError


class INVERTAVATAR_AddonPreferences(bpy.types.AddonPreferences):
    """Where the backend runs and how to reach it."""

    bl_idname = base_package

    backend_mode: EnumProperty(name="Backend", items=(
        ("LOCAL", "Local", "A backend on this machine, started by the add-on with the command install.py recorded"),
        ("REMOTE", "Remote", "A backend you run yourself, here or on another machine (e.g. a GPU box)")),
        default="LOCAL")
    remote_url: StringProperty(name="URL", description="Base URL of the backend", default=DEFAULT_URL)
    token: StringProperty(name="Token", description="Access token printed by the backend (local mode reads it "
                          "from backend.json when empty)", subtype="PASSWORD")
    connect_timeout: FloatProperty(name="Connect timeout", description="Seconds to wait for a connection",
                                   default=5.0, min=0.5, max=120.0, unit="TIME_ABSOLUTE")
    read_timeout: FloatProperty(name="Read timeout", description="Seconds to wait for each answer",
                                default=60.0, min=1.0, max=3600.0, unit="TIME_ABSOLUTE")
    job_timeout: FloatProperty(name="Job timeout", description="Cancel a reconstruction that runs longer (minutes)",
                               default=60.0, min=1.0, max=24 * 60.0)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "REMOTE":
            layout.prop(self, "remote_url")
        else:
            row = layout.row(align=True)
            row.operator("invertavatar.start_backend", icon="PLAY")
            row.operator("invertavatar.stop_backend", icon="PAUSE")
            layout.label(text=f"Start command: {describe_local_command()}")
        layout.prop(self, "token")
        row = layout.row(align=True)
        row.prop(self, "connect_timeout")
        row.prop(self, "read_timeout")
        layout.prop(self, "job_timeout")
        layout.operator("invertavatar.test_connection", icon="LINKED")
        job = context.window_manager.invertavatar
        if job.backend_info:
            layout.label(text=job.backend_info, icon="INFO")
        if job.status:
            layout.label(text=job.status, icon="ERROR" if job.status_is_error else "CHECKMARK")


def get_preferences(context: bpy.types.Context | None = None) -> INVERTAVATAR_AddonPreferences | None:
    """The add-on's preferences, or None when the package runs without being enabled as an add-on."""
    context = context or bpy.context
    addon = context.preferences.addons.get(base_package)
    return addon.preferences if addon is not None else None


def user_dir() -> Path:
    """The add-on's user folder (survives upgrades): cache, logs, backend.json."""
    try:
        return Path(bpy.utils.extension_path_user(base_package, create=True))
    except (ValueError, KeyError, RuntimeError):
        # Loaded as a legacy add-on or straight from sys.path (tests): keep data out of the package folder.
        fallback = Path(tempfile.gettempdir()) / "invertavatar-user"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def describe_local_command() -> str:
    try:
        cfg = load_config(user_dir())
    except AddonError as exc:
        return exc.message
    return " ".join(cfg.command)[:120]


@dataclass(frozen=True)
class Settings:
    """An immutable snapshot of the preferences, taken on the main thread and safe to pass to a worker."""

    mode: str
    url: str
    token: str
    timeouts: Timeouts
    job_timeout: float
    online_access: bool

    def client(self) -> BackendClient:
        """A client for these settings; refuses a non-loopback URL while online access is off."""
        check_online_access(self.url, self.online_access)
        return BackendClient(self.url, self.token, self.timeouts)


def current_settings(context: bpy.types.Context | None = None) -> Settings:
    """Snapshot of the preferences (defaults when the add-on is not enabled as such)."""
    prefs = get_preferences(context)
    mode = prefs.backend_mode if prefs else "LOCAL"
    token = prefs.token if prefs else ""
    url = prefs.remote_url if prefs else DEFAULT_URL
    if mode == "LOCAL":
        try:
            url = load_config(user_dir()).url
        except AddonError:
            url = DEFAULT_URL
        token = token or read_token_file(user_dir())
    timeouts = Timeouts(prefs.connect_timeout, prefs.read_timeout) if prefs else Timeouts()
    job_timeout = prefs.job_timeout * 60.0 if prefs else 3600.0
    return Settings(mode, url, token, timeouts, job_timeout, bool(bpy.app.online_access))


classes = (INVERTAVATAR_AddonPreferences,)
