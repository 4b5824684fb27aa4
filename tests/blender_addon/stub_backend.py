"""A stand-in for the backend's HTTP API v1 (stdlib http.server on 127.0.0.1, free port) for add-on tests.

Scenarios: ``ok`` (job runs through stages, then serves a real bundle zip), ``fail`` (job fails with a hint),
``hang`` (job runs until cancelled), ``server_cancel`` (job gets cancelled on the backend side).
Also runnable as a script so the local-backend launcher can start it as a real subprocess.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import threading
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def two_tone_png(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> bytes:
    """An RGB PNG whose upper half is ``top`` and lower half ``bottom`` (filter 0 rows), written with zlib only."""
    upper = height // 2
    raw = (b"\x00" + bytes(top) * width) * upper + (b"\x00" + bytes(bottom) * width) * (height - upper)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class StubBackend:
    """Configurable fake backend; inspect ``jobs``, ``uploads``, ``render_requests`` after a test."""

    def __init__(self, bundle_dir: Path | None = None, token: str = "secret", api_version: str = "1",
                 scenario: str = "ok", steps: int = 3, port: int = 0) -> None:
        self.bundle_dir = bundle_dir
        self.token = token
        self.api_version = api_version
        self.scenario = scenario
        self.steps = steps
        self.jobs: dict[str, dict] = {}
        self.uploads: list[dict] = []
        self.render_requests: list[dict] = []
        self.cancel_requests: list[str] = []
        self.bake_requests: list[str] = []
        self.animate_requests: list[dict] = []
        self.render_top, self.render_bottom = (255, 128, 0), (0, 64, 255)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "StubBackend":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _advance(self, job: dict) -> None:
        """Each status poll moves the job one step (deterministic, no sleeps)."""
        if job["state"] in ("done", "failed", "cancelled"):
            return
        job["polls"] += 1
        if self.scenario == "server_cancel" and job["polls"] >= 2:
            job.update(state="cancelled", message="Cancelled by another client")
        elif self.scenario == "fail" and job["polls"] >= 2:
            job.update(state="failed", stage="detect", message="No face found", error={
                "code": "no_face", "message": "No face was found in astronaut.png.",
                "hint": "Use a photo where the face is visible and at least 100 pixels wide."})
        elif self.scenario == "hang" or job["polls"] < self.steps:
            job.update(state="running", stage=["detect", "track", "texture"][min(job["polls"], 2)],
                       progress=min(0.9, job["polls"] / (self.steps + 1)), message="Working")
        else:
            job.update(state="done", stage="bundle", progress=1.0, message="Done", avatar_id=f"av-{job['id']}")

    def _bundle_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(self.bundle_dir.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(self.bundle_dir).as_posix())
        return buffer.getvalue()

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: dict) -> None:
                self._send(status, json.dumps(data).encode())

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {stub.token}":
                    return True
                self._json(401, {"error": {"code": "unauthorized", "message": "Bad token", "hint": ""}})
                return False

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_GET(self) -> None:
                if self.path == "/v1/health":
                    return self._json(200, {"backend_version": "0.1.0", "api_version": stub.api_version,
                                            "device": "cpu (2 threads)", "models": {
                                                "ict-face-model": {"installed": True, "path": "/m/ict.npz"},
                                                "neural-checkpoint": {"installed": False, "hint": "Put it…"}}})
                if not self._authorised():
                    return None
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["v1", "jobs"] and len(parts) == 3 and parts[2] in stub.jobs:
                    with stub._lock:
                        job = stub.jobs[parts[2]]
                        stub._advance(job)
                        return self._json(200, {k: job.get(k) for k in ("state", "stage", "progress", "message",
                                                                         "avatar_id", "error")} | {"job_id": job["id"]})
                if parts[:2] == ["v1", "jobs"] and len(parts) == 4 and parts[3] == "video":
                    return self._send(200, b"\x00\x00\x00\x18ftypmp42stub-video", "video/mp4")
                if parts[:2] == ["v1", "avatars"] and len(parts) == 4 and parts[3] == "bundle":
                    return self._send(200, stub._bundle_zip(), "application/zip")
                return self._json(404, {"error": {"code": "not_found", "message": "Unknown path", "hint": ""}})

            def do_POST(self) -> None:
                if not self._authorised():
                    return None
                body = self._body()
                parts = self.path.strip("/").split("/")
                if self.path == "/v1/jobs":
                    ctype = self.headers.get("Content-Type", "")
                    stub.uploads.append({"content_type": ctype, "body": body})
                    with stub._lock:
                        job_id = f"job{len(stub.jobs) + 1}"
                        stub.jobs[job_id] = {"id": job_id, "state": "queued", "stage": "", "progress": 0.0,
                                             "message": "Queued", "avatar_id": None, "error": None, "polls": 0}
                    return self._json(202, {"job_id": job_id, "state": "queued"})
                if parts[:2] == ["v1", "avatars"] and len(parts) == 4 and parts[3] in ("bake", "animate"):
                    if parts[3] == "bake":
                        stub.bake_requests.append(parts[2])
                    else:
                        stub.animate_requests.append(json.loads(body))
                    with stub._lock:
                        job_id = f"job{len(stub.jobs) + 1}"
                        stub.jobs[job_id] = {"id": job_id, "state": "queued", "stage": "", "progress": 0.0,
                                             "message": "Queued", "avatar_id": None, "error": None, "polls": 0}
                    return self._json(202, {"job_id": job_id, "state": "queued"})
                if parts[:2] == ["v1", "jobs"] and len(parts) == 4 and parts[3] == "cancel":
                    stub.cancel_requests.append(parts[2])
                    with stub._lock:
                        job = stub.jobs[parts[2]]
                        if job["state"] in ("done", "failed", "cancelled"):
                            return self._json(409, {"error": {"code": "job_finished", "message": "Job ended",
                                                              "hint": ""}})
                        job.update(state="cancelled", message="Cancelled")
                    return self._json(200, {"job_id": parts[2], "state": job["state"]})
                if parts[:2] == ["v1", "avatars"] and len(parts) == 4 and parts[3] == "render":
                    request = json.loads(body)
                    stub.render_requests.append(request)
                    return self._send(200, two_tone_png(request["width"], request["height"], stub.render_top,
                                                   stub.render_bottom),
                                      "image/png")
                return self._json(404, {"error": {"code": "not_found", "message": "Unknown path", "hint": ""}})

        return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the stub backend until terminated.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default="secret")
    args = parser.parse_args()
    StubBackend(token=args.token, port=args.port).server.serve_forever()
