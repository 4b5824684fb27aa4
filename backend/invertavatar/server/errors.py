"""HTTP errors: every failure leaves the service as ``{"error": {"code", "message", "hint"}}`` — never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from invertavatar.errors import InvertAvatarError

log = logging.getLogger("invertavatar.server")


class ApiError(Exception):
    """An error with an HTTP status; raised by the service layer, turned into JSON by the handlers below."""

    def __init__(self, status: int, code: str, message: str, hint: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.headers = headers

    @classmethod
    def from_pipeline(cls, status: int, error: InvertAvatarError) -> "ApiError":
        """Wrap a pipeline error, keeping its stable code and hint."""
        return cls(status, error.code, error.message, error.hint)


def error_body(code: str, message: str, hint: str = "") -> dict[str, dict[str, str]]:
    """The JSON body of every error response."""
    return {"error": {"code": code, "message": message, "hint": hint}}


def error_response(status: int, code: str, message: str, hint: str = "",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, hint), status_code=status, headers=headers)


# Generic codes for errors raised by the framework itself (routing, method, size of a form field, ...).
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request"}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body",))
        parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "The request is not valid."


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to the JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.hint, exc.headers)

    @app.exception_handler(InvertAvatarError)
    async def _pipeline_error(_: Request, exc: InvertAvatarError) -> JSONResponse:
        # A pipeline check that fired inside a request (e.g. a render input the schema could not rule out).
        return error_response(422, exc.code, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe_validation(exc),
                              "Check the request against /v1/openapi.json.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        hint = ""
        if exc.status_code == 400 and isinstance(exc.__cause__, (ValueError, RecursionError)):
            # FastAPI's own body parser: JSON it cannot read (a number of thousands of digits, deep nesting, ...).
            code, hint = "bad_json", ("Send a JSON object matching the endpoint's schema in /v1/openapi.json "
                                      "(numbers of at most a few hundred digits, nesting at most a few levels).")
        return error_response(exc.status_code, code, str(exc.detail), hint, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log file only; the client learns where to look.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        # The server closes the connection after an unhandled error: say so, or a keep-alive client's next request
        # fails on the dead connection.
        return error_response(500, "internal_error", "The backend hit an unexpected error.",
                              "See the backend log file (server.log in the data folder) and report the problem.",
                              {"Connection": "close"})


_DESCRIPTIONS = {400: "The Host header is not a loopback name (the service runs without --allow-remote).",
                 401: "Missing or wrong token.", 404: "No such job or avatar.", 409: "Conflicts with the current state.",
                 413: "Upload too large.", 415: "Unsupported or undecodable file.", 422: "Invalid request.",
                 503: "The job queue is full; retry later."}


def ErrorResponses(*statuses: int) -> dict[int | str, dict]:  # noqa: N802 - reads like a type in route decorators
    """OpenAPI `responses` entries for the given error statuses, all with the JSON error body."""
    from .schemas import ErrorBody

    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}
