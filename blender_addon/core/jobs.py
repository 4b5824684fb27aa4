"""One reconstruction job seen from the add-on: health check, upload, poll, download, unpack.

``JobRunner.run`` is the synchronous path (``--background`` runs and tests). ``JobRunner.start`` runs the same
code in a worker thread and posts ``JobEvent``s to a queue that the modal operator drains on Blender's main thread;
the worker never touches bpy.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import errors as E
from .bundle import extract_bundle_zip
from .client import BackendClient
from .errors import AddonError

TERMINAL_STATES = ("done", "failed", "cancelled")


@dataclass
class JobEvent:
    """What the worker reports. ``kind`` is ``progress``, ``done`` (``bundle_dir`` set) or ``error`` (``error`` set)."""

    kind: str
    stage: str = ""
    progress: float = 0.0
    message: str = ""
    job_id: str = ""
    avatar_id: str = ""
    bundle_dir: Path | None = None
    error: AddonError | None = None


class JobRunner:
    """Runs one job against the backend; ``cancel()`` may be called from any thread."""

    def __init__(self, client: BackendClient, files: list[Path], options: dict, work_dir: Path,
                 avatar_id: str | None = None, poll_interval: float = 0.5, job_timeout: float = 3600.0) -> None:
        self.client = client
        self.files = [Path(f) for f in files]
        self.options = dict(options)
        self.work_dir = Path(work_dir)
        self.refine_avatar_id = avatar_id
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.job_id = ""
        self._avatar_id = ""
        self.events: queue.Queue[JobEvent] = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask for cancellation; the runner tells the backend and ends with a ``cancelled`` error."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def start(self) -> None:
        """Run in a daemon worker thread; results arrive on ``events``."""
        self._thread = threading.Thread(target=self._thread_main, name="invertavatar-job", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> list[JobEvent]:
        """All events posted since the last call (main thread)."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def _thread_main(self) -> None:
        try:
            bundle_dir = self.run(self.events.put)
            self.events.put(JobEvent("done", "bundle", 1.0, "Avatar ready", self.job_id, self._avatar_id, bundle_dir))
        except AddonError as exc:
            self.events.put(JobEvent("error", message=str(exc), job_id=self.job_id, error=exc))
        except Exception as exc:  # a bug must still end the modal operator with a visible message
            err = AddonError(E.BAD_RESPONSE, f"Unexpected error in the job worker: {exc!r}.",
                             "Please report this with the system console output.")
            self.events.put(JobEvent("error", message=str(err), job_id=self.job_id, error=err))

    # -- the job --------------------------------------------------------------------------------------------
    def run(self, on_event: Callable[[JobEvent], None] | None = None) -> Path:
        """Do the whole job synchronously and return the unpacked bundle folder; raises ``AddonError``."""
        emit = on_event or (lambda event: None)
        emit(JobEvent("progress", "connect", 0.0, "Checking the backend"))
        self.client.health()
        self._check_cancel_before_submit()
        emit(JobEvent("progress", "upload", 0.0, f"Uploading {len(self.files)} file(s)"))
        self.job_id = self._submit()
        status = self._poll(emit)
        self._avatar_id = str(status.get("avatar_id") or "")
        if not self._avatar_id:
            raise AddonError(E.BAD_RESPONSE, "The job finished without an avatar id.", "Check the backend log.")
        return self._fetch(emit)

    def _fetch(self, emit: Callable[[JobEvent], None]) -> Path:
        """Download and unpack the finished job's bundle."""
        emit(JobEvent("progress", "download", 1.0, "Downloading the avatar", self.job_id, self._avatar_id))
        zip_path = self.client.download_bundle(self._avatar_id, self.work_dir / f"{self._avatar_id}.zip")
        bundle_dir = self.work_dir / f"{self._avatar_id}.avatar"
        if bundle_dir.exists():
            _remove_tree(bundle_dir)
        extract_bundle_zip(zip_path, bundle_dir)
        zip_path.unlink(missing_ok=True)
        return bundle_dir

    def _submit(self) -> str:
        """Start the job on the backend and return its id (a reconstruction or refinement upload)."""
        return self.client.submit_job(self.files, self.options, self.refine_avatar_id)

    @property
    def avatar_id(self) -> str:
        """The backend avatar id once the job is done."""
        return self._avatar_id

    def _send_cancel(self) -> None:
        try:
            self.client.cancel(self.job_id)
        except AddonError as exc:
            if exc.code != "job_finished":  # 409: it ended meanwhile; the next poll tells how
                raise

    def _check_cancel_before_submit(self) -> None:
        if self._cancel.is_set():
            raise AddonError(E.CANCELLED, "Reconstruction cancelled.", "")

    def _poll(self, emit: Callable[[JobEvent], None]) -> dict:
        started = time.monotonic()
        cancel_sent = False
        while True:
            if self._cancel.is_set() and not cancel_sent:
                self._send_cancel()
                cancel_sent = True
                cancel_deadline = time.monotonic() + 10.0
            status = self.client.job(self.job_id)
            state = str(status.get("state", ""))
            emit(JobEvent("progress", str(status.get("stage") or state), float(status.get("progress") or 0.0),
                          str(status.get("message") or state), self.job_id))
            if state == "done":
                if cancel_sent:
                    # The job finished before the cancel reached it: honour the artist's cancel anyway.
                    raise AddonError(E.CANCELLED, "Reconstruction cancelled.", "")
                return status
            if state == "failed":
                error = status.get("error") if isinstance(status.get("error"), dict) else {}
                raise AddonError.from_dict(error or {"message": status.get("message") or "The job failed."})
            if state == "cancelled":
                raise AddonError(E.CANCELLED, "Reconstruction cancelled.",
                                 "" if cancel_sent else "The job was cancelled on the backend.")
            if cancel_sent and time.monotonic() > cancel_deadline:
                raise AddonError(E.CANCELLED, "Reconstruction cancelled (the backend has not confirmed yet).", "")
            if time.monotonic() - started > self.job_timeout:
                self._send_cancel()
                raise AddonError(E.TIMEOUT, f"The job took longer than {self.job_timeout:g} s and was cancelled.",
                                 "Raise the job timeout in the add-on preferences, or use fewer frames.")
            self._cancel.wait(self.poll_interval)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class BakeRunner(JobRunner):
    """The neural bake of an existing avatar: no upload, the same polling, download and cancel."""

    def _submit(self) -> str:
        return self.client.bake(self.refine_avatar_id or "")


class AnimationRunner(JobRunner):
    """A reenactment on the backend: the scene's performance (``options`` = the animate request) in, a video out.

    ``run`` returns the downloaded MP4 instead of a bundle folder.
    """

    def _submit(self) -> str:
        return self.client.animate(self.refine_avatar_id or "", self.options)

    def _fetch(self, emit: Callable[[JobEvent], None]) -> Path:
        emit(JobEvent("progress", "download", 1.0, "Downloading the video", self.job_id, self._avatar_id))
        return self.client.download_video(self.job_id, self.work_dir / f"{self.job_id}.mp4")
