"""One worker thread runs the heavy jobs in order from a bounded queue (a GPU is never shared by two jobs).

The worker turns pipeline progress into index updates, honours cancellation, and publishes a finished bundle into
``avatars/`` with renames, so an avatar is either absent or complete — never partial.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from invertavatar.errors import CancelledError, InvertAvatarError

from .config import ServerConfig
from .errors import ApiError
from .store import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, Store

log = logging.getLogger("invertavatar.server")

Progress = Callable[[str, float, str], None]
# The smallest interval between two progress writes to the index: enough for a smooth bar, cheap for the job.
PROGRESS_WRITE_INTERVAL_S = 0.1


@dataclass(frozen=True)
class WorkItem:
    """What a runner needs for one job. ``output`` does not exist yet; the runner creates it."""

    job_id: str
    inputs: list[Path]
    output: Path
    refine: Path | None
    options: dict[str, Any]


class Runner(Protocol):
    def __call__(self, item: WorkItem, progress: Progress, cancel: threading.Event) -> dict[str, Any]:
        """Run one job, write the bundle at ``item.output`` and return its manifest."""


def pipeline_runner(item: WorkItem, progress: Progress, cancel: threading.Event) -> dict[str, Any]:
    """The real runner: ``invertavatar.pipeline.run_job`` (or, for a ``bake`` task, the neural bake of the avatar
    being refined). Imported here so the server starts without torch."""
    options = dict(item.options)
    task = options.pop("task", None)
    if task == "bake":
        from invertavatar.pipeline.neural_bake import bake_bundle

        return bake_bundle(item.refine, item.output, progress, cancel)
    if task == "animate":
        from invertavatar.renderers.reenact import animate

        result = animate(item.refine, item.inputs[0], video_path(item.output), progress=progress, cancel=cancel,
                         **options)
        return {"frames": result.frames, "renderer": result.renderer, "fps": result.fps}
    from invertavatar.pipeline import JobSpec, run_job

    spec = JobSpec(inputs=item.inputs, output=item.output, refine=item.refine, **options)
    result = run_job(spec, progress=progress, cancel=cancel)
    return result.manifest


def video_path(output: Path) -> Path:
    """Where an ``animate`` job's runner writes its video (beside the unused bundle path of the job)."""
    return output.with_name("animation.mp4")


def folder_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (0 when it is missing)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Worker:
    """The queue and its single thread. ``on_idle`` runs between jobs and every ``cleanup_interval_s``."""

    def __init__(self, store: Store, config: ServerConfig, runner: Runner = pipeline_runner,
                 on_idle: Callable[[set[str]], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.runner = runner
        self.on_idle = on_idle
        # Publishing, deleting and cleaning avatars all rename or remove folders: one lock orders them.
        self.avatar_lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._cond = threading.Condition()
        self._cancel: dict[str, threading.Event] = {}
        self._current: str | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="invertavatar-worker", daemon=True)

    # paths ------------------------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.config.jobs_dir / job_id

    def avatar_dir(self, avatar_id: str) -> Path:
        return self.config.avatars_dir / f"{avatar_id}.avatar"

    @property
    def videos_dir(self) -> Path:
        return self.config.data_dir / "videos"

    def video(self, job_id: str) -> Path:
        """The reenactment video of an ``animate`` job (once it is done)."""
        return self.videos_dir / f"{job_id}.mp4"

    # control ----------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the running job and stop the thread (queued jobs stay queued and are failed on the next start)."""
        with self._cond:
            self._stopping = True
            if self._current:
                self._cancel[self._current].set()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def check_capacity(self) -> None:
        """Raise 503 when the queue is full (called before an upload is read, and again when it is queued)."""
        with self._cond:
            if len(self._queue) >= self.config.queue_size:
                raise ApiError(503, "queue_full",
                               f"The backend already has {len(self._queue)} jobs waiting (the limit).",
                               "Wait for a job to finish, or cancel one, then submit again.",
                               headers={"Retry-After": "30"})

    def submit(self, job_id: str) -> None:
        """Queue a job whose row and upload folder already exist."""
        with self._cond:
            self.check_capacity()
            self._queue.append(job_id)
            self._cancel[job_id] = threading.Event()
            self._cond.notify_all()

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        with self._cond:
            if job_id in self._queue:
                self._queue.remove(job_id)
                self._cancel.pop(job_id, None)
                self.store.set_state(job_id, CANCELLED, "Cancelled before it started.",
                                     error=CancelledError().to_dict())
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                return True
            if self._current == job_id:
                self._cancel[job_id].set()
                return True
        return False

    def queued_ids(self) -> list[str]:
        with self._cond:
            return list(self._queue)

    # the thread -------------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        last_idle = 0.0
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    wait = self.config.cleanup_interval_s - (time.monotonic() - last_idle)
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                job_id = self._queue.popleft() if self._queue else None
                self._current = job_id
            if job_id is not None:
                try:
                    self._run(job_id)
                finally:
                    with self._cond:
                        self._current = None
                        self._cancel.pop(job_id, None)
            self._idle()
            last_idle = time.monotonic()

    def _idle(self) -> None:
        if self.on_idle is None:
            return
        try:
            with self._cond:
                protected = {j.avatar_id for j in map(self.store.get_job, self._queue) if j and j.avatar_id}
            self.on_idle(protected)
        except Exception:  # clean-up must never stop the worker
            log.exception("storage clean-up failed")

    def _run(self, job_id: str) -> None:
        job = self.store.get_job(job_id)
        if job is None or job.state != QUEUED:
            return
        cancel = self._cancel[job_id]
        work = self.job_dir(job_id)
        output = work / "result.avatar"
        refine = self.avatar_dir(job.avatar_id) if job.refine and job.avatar_id else None
        inputs = sorted(p for p in (work / "inputs").glob("*/*") if p.is_file())
        self.store.set_state(job_id, RUNNING, "Starting.", progress=0.0)
        log.info("job %s started (%d inputs%s)", job_id, len(inputs), f", refining {job.avatar_id}" if refine else "")
        started = time.monotonic()
        try:
            if refine is not None and not refine.is_dir():
                raise InvertAvatarError("avatar_missing", "The avatar to refine was deleted before the job started.",
                                        "Submit the photos as a new avatar.")
            manifest = self.runner(WorkItem(job_id, inputs, output, refine, job.options),
                                   self._progress_writer(job_id), cancel)
            if cancel.is_set():
                raise CancelledError()
            if job.options.get("task") == "animate":  # a video, not a new version of the avatar
                self.videos_dir.mkdir(parents=True, exist_ok=True)
                video_path(output).replace(self.video(job_id))
                avatar_id = job.avatar_id
            else:
                avatar_id = self._publish(output, job.avatar_id if refine else uuid.uuid4().hex, manifest)
        except CancelledError as exc:
            if self._stopping:  # the service is shutting down; the owner did not ask for this
                self.store.set_state(job_id, FAILED, INTERRUPTED["message"], error=INTERRUPTED)
                log.info("job %s interrupted by shutdown", job_id)
            else:
                self.store.set_state(job_id, CANCELLED, exc.message, error=exc.to_dict())
                log.info("job %s cancelled after %.1f s", job_id, time.monotonic() - started)
        except InvertAvatarError as exc:
            self.store.set_state(job_id, FAILED, exc.message, error=exc.to_dict())
            log.info("job %s failed: %s (%s)", job_id, exc.code, exc.message)
        except OSError as exc:
            error = _os_error(exc)
            if error is None:
                log.exception("job %s crashed", job_id)
                error = _internal_error(exc)
            else:
                log.warning("job %s failed: %s (%s)", job_id, error["code"], exc)
            self.store.set_state(job_id, FAILED, error["message"], error=error)
        except Exception as exc:  # a bug: keep the traceback in the log, give the client a clean error
            log.exception("job %s crashed", job_id)
            error = _internal_error(exc)
            self.store.set_state(job_id, FAILED, error["message"], error=error)
        else:
            self.store.set_state(job_id, DONE, "Finished.", avatar_id=avatar_id, progress=1.0,
                                 timings={"total": round(time.monotonic() - started, 3)},
                                 warnings=[str(w) for w in manifest.get("warnings", [])])
            log.info("job %s done in %.1f s -> avatar %s", job_id, time.monotonic() - started, avatar_id)
        finally:
            # Uploads and any partial output are never kept: the avatar folder holds everything that lasts.
            shutil.rmtree(work, ignore_errors=True)

    def _progress_writer(self, job_id: str) -> Progress:
        last = {"time": 0.0, "stage": ""}

        def progress(stage: str, fraction: float, message: str) -> None:
            now = time.monotonic()
            if stage == last["stage"] and now - last["time"] < PROGRESS_WRITE_INTERVAL_S and fraction < 1.0:
                return
            last.update(time=now, stage=stage)
            self.store.update_progress(job_id, str(stage), min(max(float(fraction), 0.0), 1.0), str(message))

        return progress

    def _publish(self, output: Path, avatar_id: str, manifest: dict[str, Any]) -> str:
        """Move a finished bundle into place; a refined avatar's old folder is swapped out, then removed."""
        if not (output / "manifest.json").is_file():
            raise InvertAvatarError("internal_error", "The pipeline finished without writing a bundle.",
                                    "See the backend log file and report the problem.")
        target = self.avatar_dir(avatar_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.avatar_lock:
            old = target.with_name(f".replaced-{uuid.uuid4().hex}")
            if target.exists():
                target.rename(old)
            output.rename(target)
            shutil.rmtree(old, ignore_errors=True)
            frames = int(manifest.get("frames", {}).get("used", 0))
            self.store.put_avatar(avatar_id, folder_size(target), frames)
        return avatar_id


def _internal_error(exc: BaseException) -> dict[str, str]:
    return {"code": "internal_error", "message": f"The job stopped on an unexpected error ({type(exc).__name__}).",
            "hint": "See the backend log file (server.log in the data folder) and report the problem."}


def _os_error(exc: OSError) -> dict[str, str] | None:
    """A job that could not write (a read-only or full folder) fails as ``permission`` or ``disk``, naming the
    place; other OS errors stay internal."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return {"code": "permission", "message": f"The job could not write a file: {exc.strerror}{where}.",
                "hint": "Make the backend's data folder and home folder (its caches) writable, or start it with "
                        "--data-dir on a writable disk."}
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return {"code": "disk", "message": f"The disk is full: {exc.strerror}{where}.",
                "hint": "Free some space (or lower --storage-cap-gb), then submit the job again."}
    return None
