"""The service layer behind the routes: job submission, status, cancellation and avatar files.

Routes stay thin; this class owns the index, the worker and the preview renderer, and turns every refusal into
an ``ApiError`` with the right status.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .cleanup import clean_storage
from .config import ServerConfig
from .errors import ApiError
from .preview import PreviewRenderer
from .schemas import ID_PATTERN, AnimateRequest, JobOptions, RenderRequest
from .store import FINAL_STATES, JobRecord, Store
from .uploads import Limits, receive_multipart, type_uploads
from .worker import Runner, Worker, pipeline_runner

log = logging.getLogger("invertavatar.server")

CANCEL_WAIT_S = 2.0


def iso(timestamp: float) -> str:
    """ISO 8601 UTC with a Z, to the second."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_json(job: JobRecord) -> dict[str, Any]:
    """The API shape of a job."""
    return {"job_id": job.id, "state": job.state, "stage": job.stage, "progress": job.progress,
            "message": job.message, "avatar_id": job.avatar_id, "error": job.error, "warnings": job.warnings,
            "created": iso(job.created), "updated": iso(job.updated)}


def _not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"No {kind} with id '{ident}' exists on this backend.",
                    "It may have been deleted or removed by the storage clean-up; submit the job again.")


class Service:
    """One per running server."""

    def __init__(self, config: ServerConfig, runner: Runner = pipeline_runner) -> None:
        self.config = config
        for folder in (config.jobs_dir, config.avatars_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.index_path)
        interrupted = self.store.mark_interrupted()
        if interrupted:
            log.warning("marked %d job(s) interrupted by the last shutdown as failed: %s",
                        len(interrupted), ", ".join(interrupted))
        self.worker = Worker(self.store, config, runner, on_idle=self._clean)
        self.preview = PreviewRenderer()
        self.limits = Limits(config.max_file_bytes, config.max_job_bytes, config.max_files)

    def _clean(self, protected: set[str]) -> None:
        clean_storage(self.worker, protected)

    def start(self) -> None:
        self._clean(set())
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        self.store.close()

    # jobs -------------------------------------------------------------------------------------------------------
    async def create_job(self, request: Request) -> JobRecord:
        """Receive an upload, check it, record the job and queue it."""
        self.worker.check_capacity()  # refuse before reading a large body
        job_id = uuid.uuid4().hex
        staging = self.config.jobs_dir / f".incoming-{job_id}"
        try:
            received = await receive_multipart(request, staging, self.limits)
            options = _parse_options(received.fields.get("options", ""))
            avatar_id = received.fields.get("avatar_id", "").strip() or None
            if avatar_id is not None:
                self._require_avatar(avatar_id)
            await run_in_threadpool(type_uploads, received, staging / "inputs")
            staging.rename(self.config.jobs_dir / job_id)
            job = self.store.create_job(job_id, options, avatar_id, refine=avatar_id is not None)
            try:
                self.worker.submit(job_id)
            except ApiError:
                self.store.delete_job(job_id)
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(self.config.jobs_dir / job_id, ignore_errors=True)
            raise
        log.info("job %s queued (%d file(s)%s)", job_id, len(received.files),
                 f", refining avatar {avatar_id}" if avatar_id else "")
        return job

    def _queue_avatar_task(self, avatar_id: str, options: dict[str, Any],
                           inputs: dict[str, bytes] | None = None) -> JobRecord:
        """Queue a job that works on an existing avatar without an upload (``options["task"]`` says which);
        ``inputs`` are small files the service writes for it (e.g. tracks.json)."""
        self.worker.check_capacity()
        job_id = uuid.uuid4().hex
        folder = self.config.jobs_dir / job_id / "inputs" / "task"
        folder.mkdir(parents=True)
        for name, data in (inputs or {}).items():
            (folder / name).write_bytes(data)
        job = self.store.create_job(job_id, options, avatar_id, refine=True)  # refine: the avatar is in use
        try:
            self.worker.submit(job_id)
        except ApiError:
            self.store.delete_job(job_id)
            shutil.rmtree(self.config.jobs_dir / job_id, ignore_errors=True)
            raise
        log.info("job %s queued (%s of avatar %s)", job_id, options["task"], avatar_id)
        return job

    def create_bake_job(self, avatar_id: str) -> JobRecord:
        """Queue a neural bake of an existing neural avatar (no upload; the result replaces the avatar's bundle)."""
        from invertavatar.renderers import NEURAL_STATE_FILE

        folder = self._require_avatar(avatar_id)
        if not (folder / "state" / NEURAL_STATE_FILE).is_file():
            raise ApiError(409, "no_neural_state", "This avatar was made without the neural inversion, so there is "
                           "no neural avatar to bake.", "Reconstruct it with mode 'neural' (needs the neural "
                           "checkpoints); its texture is then baked as part of the job.")
        return self._queue_avatar_task(avatar_id, {"task": "bake"})

    def create_animate_job(self, avatar_id: str, request: AnimateRequest) -> JobRecord:
        """Queue a reenactment of an avatar for the performance in ``request``; the video is the job's result."""
        from invertavatar.errors import InvertAvatarError
        from invertavatar.io.bundle import read_bundle
        from invertavatar.renderers import choose_renderer

        folder = self._require_avatar(avatar_id)
        try:
            choose_renderer(read_bundle(folder), request.renderer)  # refuse neural on a fit-only avatar now
        except InvertAvatarError as exc:
            raise ApiError.from_pipeline(409, exc) from exc
        options = {"task": "animate", "side_by_side": False,
                   **request.model_dump(exclude={"tracks"}, exclude_none=True)}
        return self._queue_avatar_task(avatar_id, options, {"tracks.json": json.dumps(request.tracks.model_dump(exclude_none=True)).encode()})

    def video(self, job_id: str) -> Path:
        """The finished video of an ``animate`` job."""
        job = self.job(job_id)
        path = self.worker.video(job_id)
        if job.options.get("task") != "animate" or not path.is_file():
            raise ApiError(404, "video_not_found", f"Job {job_id} has no video (yet).",
                           "Only finished animate jobs have one; poll the job until it is done.")
        return path

    def job(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id)
        if job is None:
            raise _not_found("job", job_id)
        return job

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel and wait briefly for the worker to stop, so the answer usually already says `cancelled`."""
        job = self.job(job_id)
        if job.state in FINAL_STATES or not self.worker.cancel(job_id):
            job = self.job(job_id)
            raise ApiError(409, "job_finished", f"The job has already ended ({job.state}).",
                           "Only queued or running jobs can be cancelled.")
        deadline = time.monotonic() + CANCEL_WAIT_S
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.state in FINAL_STATES:
                break
            time.sleep(0.05)
        return job

    # avatars ----------------------------------------------------------------------------------------------------
    def _require_avatar(self, avatar_id: str) -> Path:
        if not re.fullmatch(ID_PATTERN, avatar_id) or self.store.get_avatar(avatar_id) is None:
            raise _not_found("avatar", avatar_id)
        folder = self.worker.avatar_dir(avatar_id)
        if not folder.is_dir():
            raise _not_found("avatar", avatar_id)
        return folder

    def bundle_folder(self, avatar_id: str) -> Path:
        folder = self._require_avatar(avatar_id)
        self.store.touch_avatar(avatar_id)
        return folder

    def delete_avatar(self, avatar_id: str) -> None:
        self._require_avatar(avatar_id)
        with self.worker.avatar_lock:
            busy = self.store.active_jobs_for_avatar(avatar_id)
            if busy:
                raise ApiError(409, "avatar_busy", f"Job {busy[0]} is refining this avatar.",
                               "Cancel that job or wait for it to end, then delete the avatar.")
            shutil.rmtree(self.worker.avatar_dir(avatar_id), ignore_errors=True)
            self.store.delete_avatar(avatar_id)
        self.preview.forget(avatar_id)
        log.info("avatar %s deleted on request", avatar_id)

    def render(self, avatar_id: str, request: RenderRequest) -> tuple[bytes, str]:
        """PNG bytes and the renderer that drew them."""
        folder = self.bundle_folder(avatar_id)
        return self.preview.render_png(avatar_id, folder, request)


def _parse_options(text: str) -> dict[str, Any]:
    """The `options` form field: a JSON object checked against JobOptions; only the keys given are passed on."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ApiError(422, "bad_options", f"The options field is not valid JSON ({exc.msg}).",
                       'Send a JSON object, e.g. {"mode": "fit", "max_frames": 64}.') from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; brackets nested too deep
        what = "is nested too deeply" if isinstance(exc, RecursionError) else "holds a number too long to read"
        raise ApiError(422, "bad_options", f"The options field {what}.",
                       'Send a flat JSON object, e.g. {"mode": "fit", "max_frames": 64}.') from None
    if not isinstance(raw, dict):
        raise ApiError(422, "bad_options", "The options field must be a JSON object.",
                       'Send a JSON object, e.g. {"mode": "fit", "max_frames": 64}.')
    try:
        return JobOptions.model_validate(raw).model_dump(exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors()[:5])
        raise ApiError(422, "bad_options", f"The options are not valid: {problems}.",
                       "See the JobOptions schema in /v1/openapi.json.") from None
