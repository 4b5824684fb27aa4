"""The FastAPI application: routes of HTTP API v1, the token check, the Host-header check and error handlers."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from invertavatar import API_VERSION, __version__

from .auth import host_allowed, is_loopback_host, token_matches
from .config import ServerConfig
from .errors import ApiError, ErrorResponses, error_response, install_error_handlers
from .health import health
from .schemas import ID_PATTERN, AnimateRequest, Health, Job, JobAccepted, JobOptions, RenderRequest
from .service import Service, job_json
from .uploads import FIELD_LIMIT
from .worker import Runner, pipeline_runner
from .zipstream import iter_zip

JobId = Annotated[str, Path(pattern=ID_PATTERN, description="32 lowercase hex digits.")]
AvatarId = Annotated[str, Path(pattern=ID_PATTERN, description="32 lowercase hex digits.")]

_JOB_FORM = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "Photos (JPEG, PNG, WebP, BMP, TIFF) or clips (MP4, MOV, MKV, WebM, AVI)."},
                "options": {"type": "string", "description": "JSON object, see the JobOptions schema."},
                "avatar_id": {"type": "string", "description": "Refine this existing avatar instead of making one."},
            }}}},
    }
}


_bearer = HTTPBearer(auto_error=False, description="The token printed when the backend first started.")


async def require_token(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Dependency of every route but health: the bearer token must match. ``Gate`` has already checked it before
    the body was read; this stays as a second line and gives the OpenAPI file its security scheme."""
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    if not token_matches(request.app.state.token, header):
        raise ApiError(401, "unauthorized", "A valid access token is required.",
                       "Send 'Authorization: Bearer <token>' with the token the backend printed on its "
                       "first start (stored in its token file).", headers={"WWW-Authenticate": "Bearer"})


#: Paths answered without the token (they carry no request body and reveal nothing private).
OPEN_PATHS = frozenset({"/v1/health", "/v1/openapi.json"})


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


class Gate:
    """Pure ASGI middleware in front of every route (it never buffers a body): the Host check, the token and the
    body-size cap all run before a single body byte is read, and a body is then counted as it streams in.

    A refusal sent before the body was read says ``Connection: close``: the unread rest of the body must not be
    taken for the next request on a keep-alive connection.
    """

    def __init__(self, app: ASGIApp, token: str, check_host: bool, job_body_limit: int,
                 json_body_limit: int, bind_host: str | None = None) -> None:
        self.app = app
        self.bind_host = bind_host
        self.token = token
        self.check_host = check_host
        self.job_body_limit = job_body_limit
        self.json_body_limit = json_body_limit

    def _limit(self, scope: Scope) -> int:
        return self.job_body_limit if scope["path"] == "/v1/jobs" else self.json_body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        close = {"Connection": "close"} if _has_body(headers) else {}
        if self.check_host and not host_allowed(headers.get("host"), self.bind_host):
            await error_response(400, "bad_host", "This backend only answers requests addressed to localhost.",
                                 "Use http://127.0.0.1:<port> or http://localhost:<port>; start it with "
                                 "--allow-remote to serve others.", close)(scope, receive, send)
            return
        if scope["path"] not in OPEN_PATHS and not token_matches(self.token, headers.get("authorization")):
            await error_response(401, "unauthorized", "A valid access token is required.",
                                 "Send 'Authorization: Bearer <token>' with the token the backend printed on its "
                                 "first start (stored in its token file).",
                                 {"WWW-Authenticate": "Bearer", **close})(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        await self._forward(scope, receive, send, limit)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        state = {"read": 0, "started": False, "answered": False}

        async def counted_receive() -> dict[str, Any]:
            if state["answered"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > limit:
                    if not state["started"]:
                        state["answered"] = True
                        await _too_large(limit)(scope, receive, send)
                    return {"type": "http.disconnect"}  # the app stops reading; its own answer is dropped
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["answered"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not state["answered"]:
                raise
            # The app failed on the body we cut off after answering 413: nothing more to tell anyone.


def _too_large(limit: int) -> Response:
    return error_response(413, "body_too_large", f"The request body is larger than this endpoint's limit of "
                          f"{limit / 2**20:g} MiB.", "Send a smaller request; uploads take their limits from "
                          "--max-job-mb.", {"Connection": "close"})


def create_app(config: ServerConfig, token: str, runner: Runner = pipeline_runner) -> FastAPI:
    """Build the application. ``runner`` is the job runner (the pipeline; tests may pass their own)."""
    service = Service(config, runner)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        # Importing torch for the device name takes seconds: do it now, so the first health call is quick.
        threading.Thread(target=health, name="invertavatar-health-warmup", daemon=True).start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="InvertAvatar backend", version=__version__, lifespan=lifespan,
                  openapi_url="/v1/openapi.json", docs_url=None, redoc_url=None,
                  description=f"HTTP API v{API_VERSION}. Every call except /v1/health needs "
                              "`Authorization: Bearer <token>`.")
    app.state.service = service
    app.state.token = token
    install_error_handlers(app)
    # Uploads: the job cap plus room for the multipart framing (part headers) and the small form fields.
    job_body_limit = config.max_job_bytes + config.max_files * 4096 + 4 * FIELD_LIMIT
    app.add_middleware(Gate, token=token, check_host=not config.allow_remote, job_body_limit=job_body_limit,
                       json_body_limit=config.max_json_bytes, bind_host=config.host)
    auth = [Depends(require_token)]

    @app.get("/v1/health", response_model=Health, response_model_exclude_none=True, tags=["service"],
             responses=ErrorResponses(400))
    def get_health() -> dict[str, Any]:
        """Versions, compute device and installed models. No token needed."""
        return health()

    @app.post("/v1/jobs", status_code=202, response_model=JobAccepted, dependencies=auth, tags=["jobs"],
              openapi_extra=_JOB_FORM, responses=ErrorResponses(400, 401, 404, 413, 415, 422, 503))
    async def create_job(request: Request) -> dict[str, Any]:
        """Upload photos or a clip (field `files`) with `options` (JSON); `avatar_id` refines that avatar."""
        job = await service.create_job(request)
        return {"job_id": job.id, "state": job.state}

    @app.get("/v1/jobs/{job_id}", response_model=Job, dependencies=auth, tags=["jobs"],
             responses=ErrorResponses(400, 401, 404, 422))
    async def get_job(job_id: JobId) -> dict[str, Any]:
        """State, stage, progress, message and (on failure) the error of a job."""
        # Async on purpose: a poll is one indexed SQLite read, cheaper than a hop to the thread pool, and polling
        # shares the CPU (and the GIL) with the running job.
        return job_json(service.job(job_id))

    @app.post("/v1/jobs/{job_id}/cancel", response_model=Job, dependencies=auth, tags=["jobs"],
              responses=ErrorResponses(400, 401, 404, 409, 422))
    def cancel_job(job_id: JobId) -> dict[str, Any]:
        """Cancel a queued or running job; waits up to 2 s for it to stop and returns its state."""
        return job_json(service.cancel(job_id))

    @app.get("/v1/avatars/{avatar_id}/bundle", dependencies=auth, tags=["avatars"], response_class=StreamingResponse,
             responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "The bundle folder's files as a zip."},
                        **ErrorResponses(400, 401, 404, 422)})
    def get_bundle(avatar_id: AvatarId, request: Request) -> StreamingResponse:
        """Download the avatar bundle (its folder's contents, zipped while streaming)."""
        folder = service.bundle_folder(avatar_id)
        remote = request.client is None or not is_loopback_host(request.client.host)
        return StreamingResponse(iter_zip(folder, compress=remote), media_type="application/zip",
                                 headers={"Content-Disposition": f'attachment; filename="{avatar_id}.avatar.zip"'})

    @app.post("/v1/avatars/{avatar_id}/render", dependencies=auth, tags=["avatars"], response_class=Response,
              responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                               "description": "The rendered preview; header `X-InvertAvatar-Renderer` names "
                                              "the renderer (`albedo` or `neural`)."},
                         **ErrorResponses(400, 401, 404, 409, 422)})
    def render(avatar_id: AvatarId, body: RenderRequest) -> Response:
        """Render the avatar with ARKit weights, head pose, gaze and a camera (the client's, in the avatar's frame,
        or an orbit by `yaw`) with the `albedo` or `neural` renderer; returns a PNG. `neural` on an avatar made
        without the neural inversion is a 409 (`no_neural_state`)."""
        png, renderer = service.render(avatar_id, body)
        return Response(png, media_type="image/png", headers={"X-InvertAvatar-Renderer": renderer})

    @app.post("/v1/avatars/{avatar_id}/bake", status_code=202, response_model=JobAccepted, dependencies=auth,
              tags=["avatars"], responses=ErrorResponses(400, 401, 404, 409, 422, 503))
    def bake(avatar_id: AvatarId) -> dict[str, Any]:
        """Bake the neural texture of a neural avatar again (renders from views around the head, fused into
        `textures/neural_baked.png`); a job like any other, which replaces the avatar's bundle when done."""
        job = service.create_bake_job(avatar_id)
        return {"job_id": job.id, "state": job.state}

    @app.post("/v1/avatars/{avatar_id}/animate", status_code=202, response_model=JobAccepted, dependencies=auth,
              tags=["avatars"], responses=ErrorResponses(400, 401, 404, 409, 422, 503))
    def animate(avatar_id: AvatarId, body: AnimateRequest) -> dict[str, Any]:
        """Reenactment as a job: the avatar rendered for every frame of a performance (tracks.json content, e.g.
        the Blender scene's keys) with either renderer, encoded as MP4; fetch it from `/v1/jobs/{id}/video`."""
        job = service.create_animate_job(avatar_id, body)
        return {"job_id": job.id, "state": job.state}

    @app.get("/v1/jobs/{job_id}/video", dependencies=auth, tags=["jobs"], response_class=FileResponse,
             responses={200: {"content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
                              "description": "The reenactment video of a finished animate job."},
                        **ErrorResponses(400, 401, 404, 422)})
    def get_video(job_id: JobId) -> FileResponse:
        """The MP4 of a finished `animate` job."""
        return FileResponse(service.video(job_id), media_type="video/mp4", filename=f"{job_id}.mp4")

    @app.delete("/v1/avatars/{avatar_id}", status_code=204, dependencies=auth, tags=["avatars"],
                response_class=Response, responses=ErrorResponses(400, 401, 404, 409, 422))
    def delete_avatar(avatar_id: AvatarId) -> Response:
        """Delete an avatar and its files."""
        service.delete_avatar(avatar_id)
        return Response(status_code=204)

    default_openapi = app.openapi

    def openapi_with_options() -> dict[str, Any]:
        # The options form field is a JSON string; publish its schema so clients can validate before sending.
        schema = default_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["JobOptions"] = JobOptions.model_json_schema()
        return schema

    app.openapi = openapi_with_options  # type: ignore[method-assign]
    return app
