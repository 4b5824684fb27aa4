"""HTTP client for the backend's API v1 (DESIGN §4), standard library only.

Every call has explicit connect and read timeouts, uploads and downloads are streamed in chunks, and every failure
becomes an ``AddonError`` whose hint says what the artist can do. No proxy is ever used: ``http.client`` talks to
the host directly, which is what a loopback backend needs.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import mimetypes
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit

from . import errors as E
from .errors import AddonError

API_VERSION = "1"
ADDON_USER_AGENT = "InvertAvatar-Blender/0.1"
_CHUNK = 1 << 16


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_online_access(url: str, online_access: bool) -> None:
    """Refuse a non-loopback backend when Blender's "Allow Online Access" is off (extension policy)."""
    if not online_access and not is_loopback_url(url):
        raise AddonError(E.OFFLINE_REFUSED, f"The backend URL {url} is on another machine and Blender's online "
                         "access is turned off.", "Enable Preferences > System > Network > Allow Online Access, or "
                         "use a backend on this machine (http://127.0.0.1:…).")


@dataclass
class Timeouts:
    """Seconds to wait for a connection and for each read."""

    connect: float = 5.0
    read: float = 60.0


class BackendClient:
    """A thin, synchronous client; safe to use from a worker thread (it never touches bpy)."""

    def __init__(self, base_url: str, token: str = "", timeouts: Timeouts | None = None) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AddonError(E.BAD_INPUT, f"{base_url!r} is not an http(s) URL.",
                             "Set the backend URL in the add-on preferences, e.g. http://127.0.0.1:8765.")
        self.base_url = base_url.strip().rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.token = token.strip()
        self.timeouts = timeouts or Timeouts()

    # -- plumbing -------------------------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeouts.connect)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise AddonError(E.BACKEND_DOWN, f"Cannot reach the InvertAvatar backend at {self.base_url} ({exc}).",
                             "Start the backend (Preferences > Start backend, or run 'invertavatar serve') "
                             "or correct the URL in the add-on preferences.") from exc
        conn.sock.settimeout(self.timeouts.read)
        return conn

    def _request(self, method: str, path: str, body=None, headers: dict | None = None,
                 auth: bool = True) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        all_headers = {"User-Agent": ADDON_USER_AGENT, "Accept": "application/json"}
        if auth and self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        conn = self._connect()
        try:
            try:
                conn.request(method, self._prefix + path, body=body, headers=all_headers)
            except (BrokenPipeError, ConnectionResetError):
                # A server may answer (e.g. 401) and close before reading a large upload: read that answer.
                pass
            response = conn.getresponse()
        except socket.timeout as exc:
            conn.close()
            raise AddonError(E.TIMEOUT, f"The backend did not answer {method} {path} within "
                             f"{self.timeouts.read:g} s.", "Raise the read timeout in the add-on preferences, "
                             "or check that the backend is not overloaded.") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise AddonError(E.BACKEND_DOWN, f"The connection to the backend broke during {method} {path} ({exc}).",
                             "Check that the backend is still running, then try again.") from exc
        if response.status >= 400:
            payload = response.read()
            conn.close()
            raise self._http_error(response.status, payload)
        return response, conn

    @staticmethod
    def _http_error(status: int, payload: bytes) -> AddonError:
        if status in (401, 403):
            return AddonError(E.UNAUTHORIZED, "The backend refused the access token.",
                              "Copy the token the backend prints (or the one in backend.json) into the add-on "
                              "preferences.")
        try:
            data = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            err = data.get("error") if isinstance(data.get("error"), dict) else None
            detail = data.get("detail")
            if err is None and isinstance(detail, dict):
                err = detail.get("error") if isinstance(detail.get("error"), dict) else detail
            if err is None and "message" in data:
                err = data
            if isinstance(err, dict) and err.get("message"):
                return AddonError.from_dict(err, default_code=E.BAD_RESPONSE)
            if isinstance(detail, str):
                return AddonError(E.BAD_RESPONSE, f"The backend answered {status}: {detail}",
                                  "Check the backend log for details.")
        return AddonError(E.BAD_RESPONSE, f"The backend answered HTTP {status}.", "Check the backend log for details.")

    def _json(self, method: str, path: str, payload: dict | None = None, auth: bool = True) -> dict:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response, conn = self._request(method, path, body, headers, auth)
        try:
            raw = response.read()
        finally:
            conn.close()
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise AddonError(E.BAD_RESPONSE, f"The backend sent an unreadable answer to {method} {path}.",
                             "Check that the URL points at an InvertAvatar backend.") from exc
        if not isinstance(data, dict):
            raise AddonError(E.BAD_RESPONSE, f"The backend sent an unexpected answer to {method} {path}.",
                             "Check that the URL points at an InvertAvatar backend.")
        return data

    # -- API v1 ---------------------------------------------------------------------------------------------
    def health(self) -> dict:
        """``GET /v1/health``; raises ``api_version_mismatch`` when the backend speaks another API version."""
        data = self._json("GET", "/v1/health", auth=False)
        version = str(data.get("api_version", ""))
        if version != API_VERSION:
            raise AddonError(E.VERSION_MISMATCH, f"The backend speaks API version {version or '?'} "
                             f"(backend {data.get('backend_version', '?')}); this add-on needs version {API_VERSION}.",
                             "Install matching versions of the add-on and the backend (run install.py again).")
        return data

    def submit_job(self, files: list[Path], options: dict, avatar_id: str | None = None) -> str:
        """``POST /v1/jobs`` with the photos or clip streamed as multipart; returns the job id."""
        paths = [Path(f) for f in files]
        for path in paths:
            if not path.is_file():
                raise AddonError(E.BAD_INPUT, f"The input file {path} does not exist.",
                                 "Remove it from the Input list or add it again.")
        boundary = f"invertavatar-{uuid.uuid4().hex}"
        fields = [("options", json.dumps(options))]
        if avatar_id:
            fields.append(("avatar_id", avatar_id))
        parts, length = _multipart_plan(boundary, fields, paths)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(length)}
        response, conn = self._request("POST", "/v1/jobs", _multipart_stream(parts), headers)
        try:
            data = json.loads(response.read().decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            data = {}
        finally:
            conn.close()
        if not isinstance(data, dict) or not data.get("job_id"):
            raise AddonError(E.BAD_RESPONSE, "The backend accepted the upload but returned no job id.",
                             "Check the backend log for details.")
        return str(data["job_id"])

    def job(self, job_id: str) -> dict:
        """``GET /v1/jobs/{id}``: state, stage, progress, message, avatar_id, error."""
        return self._json("GET", f"/v1/jobs/{quote(job_id)}")

    def cancel(self, job_id: str) -> dict:
        """``POST /v1/jobs/{id}/cancel``."""
        return self._json("POST", f"/v1/jobs/{quote(job_id)}/cancel", {})

    def download_bundle(self, avatar_id: str, dest: Path) -> Path:
        """``GET /v1/avatars/{id}/bundle`` streamed to ``dest`` (a zip); written to a temp name, then renamed."""
        return self._download(f"/v1/avatars/{quote(avatar_id)}/bundle", Path(dest), "application/zip",
                              "the avatar bundle")

    def _download(self, path: str, dest: Path, accept: str, what: str) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        response, conn = self._request("GET", path, headers={"Accept": accept})
        try:
            with open(partial, "wb") as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
        except (OSError, http.client.HTTPException) as exc:
            partial.unlink(missing_ok=True)
            raise AddonError(E.BACKEND_DOWN, f"Downloading {what} failed ({exc}).",
                             "Check disk space and the connection, then try again.") from exc
        finally:
            conn.close()
        os.replace(partial, dest)
        return dest

    def render(self, avatar_id: str, arkit: dict[str, float], head_rotation: list[float], width: int,
               height: int, **extra) -> tuple[bytes, str]:
        """``POST /v1/avatars/{id}/render``; returns the PNG bytes and the renderer that drew them.

        ``extra`` are further request fields (``renderer``, ``camera``, ``gaze``, ``head_translation``,
        ``neural_resolution``, ``background``; docs/server.md); ``None`` values are left out.
        """
        payload = {"arkit": arkit, "head_rotation": list(head_rotation), "width": int(width), "height": int(height)}
        payload.update({k: v for k, v in extra.items() if v is not None})
        body = json.dumps(payload).encode("utf-8")
        response, conn = self._request("POST", f"/v1/avatars/{quote(avatar_id)}/render", body,
                                       {"Content-Type": "application/json", "Accept": "image/png"})
        try:
            return response.read(), response.getheader("X-InvertAvatar-Renderer") or "albedo"
        finally:
            conn.close()

    def animate(self, avatar_id: str, request: dict) -> str:
        """``POST /v1/avatars/{id}/animate`` (``tracks`` + options, docs/server.md); returns the job id."""
        return str(self._json("POST", f"/v1/avatars/{quote(avatar_id)}/animate", request)["job_id"])

    def download_video(self, job_id: str, dest: Path) -> Path:
        """``GET /v1/jobs/{id}/video`` streamed to ``dest`` (temp name, then renamed)."""
        return self._download(f"/v1/jobs/{quote(job_id)}/video", Path(dest), "video/mp4", "the video")

    def bake(self, avatar_id: str) -> str:
        """``POST /v1/avatars/{id}/bake``: queue the neural bake of a neural avatar; returns the job id."""
        return str(self._json("POST", f"/v1/avatars/{quote(avatar_id)}/bake", {})["job_id"])

    def delete_avatar(self, avatar_id: str) -> None:
        """``DELETE /v1/avatars/{id}``."""
        response, conn = self._request("DELETE", f"/v1/avatars/{quote(avatar_id)}")
        response.read()
        conn.close()


def _multipart_plan(boundary: str, fields: list[tuple[str, str]], files: list[Path]) -> tuple[list, int]:
    """The multipart body as a list of bytes and file paths, plus its exact length (for Content-Length)."""
    parts: list = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for path in files:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        safe_name = path.name.replace('"', "_")
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{safe_name}"\r\n'
                      f"Content-Type: {ctype}\r\n\r\n").encode())
        parts.append(path)
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in parts)
    return parts, length


def _multipart_stream(parts: list) -> Iterator[bytes]:
    for part in parts:
        if isinstance(part, Path):
            with open(part, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk
        else:
            yield part
