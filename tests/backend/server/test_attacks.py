"""Regression tests for issue 28: the attacks on the local server, each built here from a few bytes.

Decompression bombs (images and clips that declare huge pixel counts), bodies read before the token check, form
fields that dodge the upload cap, JSON that crashes the parser, malformed animate tracks and read-only folders.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from invertavatar.errors import InvertAvatarError
from invertavatar.io import frames
from invertavatar.io.frames import open_source
from invertavatar.server.app import create_app

from .conftest import GatedRunner

TOKEN = "t" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# attack inputs ----------------------------------------------------------------------------------------------------
def jpeg_declaring(width: int, height: int, progressive: bool = True) -> bytes:
    """A real 16×16 JPEG whose frame header (SOF) is rewritten to declare ``width`` × ``height``: a few hundred
    bytes that a decoder would expand to the declared size."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 80, 60)).save(buffer, "JPEG", progressive=progressive, quality=50)
    data = bytearray(buffer.getvalue())
    at = 2
    while at < len(data):
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2:at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[at + 5:at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        at += 2 + length
    raise AssertionError("no SOF marker")


def mkv_with_frame(path, jpeg: bytes, width: int, height: int) -> bytes:
    """A Matroska file holding one MJPEG frame (``jpeg``), its track header declaring ``width`` × ``height``."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p"
        packet = av.Packet(jpeg)
        packet.stream, packet.pts, packet.dts = stream, 0, 0
        container.mux(packet)
    return path.read_bytes()


def mjpeg_frame(width: int, height: int) -> bytes:
    """One genuinely encoded MJPEG frame of a flat picture (small, whatever its size)."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24")
    packets = codec.encode(frame.reformat(format="yuvj420p")) + codec.encode(None)
    return bytes(packets[0])


@pytest.fixture
def client(config):
    runner = GatedRunner()
    with TestClient(create_app(config, TOKEN, runner), base_url="http://127.0.0.1:8765",
                    raise_server_exceptions=False) as client:
        yield client
    runner.gate.set()


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"] and body["error"]["hint"]
    assert "Traceback" not in response.text
    return body["error"]


# 1. decompression bombs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pillow_guard", ["default", "disabled"])
def test_progressive_jpeg_bomb_is_refused_from_its_header(tmp_path, monkeypatch, pillow_guard):
    # 24000×24000 in ~500 bytes; decoding it would cost over a gigabyte. The refusal must not depend on what
    # the process did before (another library, or an older version of ours, switching Pillow's guard off).
    if pillow_guard == "disabled":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = tmp_path / "bomb.jpg"
    path.write_bytes(jpeg_declaring(24000, 24000))
    assert path.stat().st_size < 1000
    with pytest.raises(InvertAvatarError) as info:
        open_source(path)
    assert info.value.code == "image_too_large" and "megapixels" in info.value.hint


def test_reading_a_photo_leaves_pillows_guard_alone(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (10, 20, 30)).save(path)
    (frame,) = list(open_source(path))
    assert frame.image.shape == (48, 64, 3)
    assert Image.MAX_IMAGE_PIXELS == before


def test_jpeg_bomb_upload_is_refused_before_the_202(client, config):
    files = [("files", ("bomb.jpg", jpeg_declaring(24000, 24000), "image/jpeg"))]
    error = assert_error(client.post("/v1/jobs", files=files, headers=AUTH), 415, "image_too_large")
    assert "576 megapixels" in error["message"] or "24000×24000" in error["message"]
    assert list(config.jobs_dir.iterdir()) == []


def test_clip_declaring_huge_frames_is_refused_before_decoding(tmp_path, client, config):
    data = mkv_with_frame(tmp_path / "bomb.mkv", jpeg_declaring(12000, 12000, progressive=False), 12000, 12000)
    assert len(data) < 2000
    with pytest.raises(InvertAvatarError) as info:
        open_source(tmp_path / "bomb.mkv")
    # FFmpeg's stream probe already runs under the cap, so the size is known only when it is within it.
    assert info.value.code == "unreadable_input" and "36 megapixels" in info.value.message
    files = [("files", ("bomb.mkv", data, "video/x-matroska"))]
    error = assert_error(client.post("/v1/jobs", files=files, headers=AUTH), 415, "unreadable_input")
    assert "megapixels" in error["message"]
    assert list(config.jobs_dir.iterdir()) == []


def test_decoder_refuses_frames_larger_than_the_container_says(tmp_path, monkeypatch):
    # The track header says 64×64, the frame inside is 1600×1200: the decoders (FFmpeg's stream probe included,
    # which decodes a frame before any size is known) must be capped themselves, not only the header check.
    monkeypatch.setattr(frames, "MAX_VIDEO_PIXELS", 1_000_000)
    mkv_with_frame(tmp_path / "liar.mkv", mjpeg_frame(1600, 1200), 64, 64)
    with pytest.raises(InvertAvatarError) as info:
        list(open_source(tmp_path / "liar.mkv"))
    assert info.value.code == "unreadable_input" and "megapixels" in info.value.message
    with av.open(str(tmp_path / "liar.mkv"), options={"max_pixels": "1000000"}) as probe:
        assert probe.streams.video[0].codec_context.width == 0  # the probe decode was refused, not run
    # The same frame under an honest, larger cap decodes (the refusal above is the cap, not a broken file).
    monkeypatch.setattr(frames, "MAX_VIDEO_PIXELS", 4_000_000)
    (frame,) = list(open_source(tmp_path / "liar.mkv"))
    assert frame.image.shape == (1200, 1600, 3)


# 2. bodies are not read before the token, the Host and the size are checked --------------------------------------
MIB = 1 << 20


class Body:
    """An ASGI ``receive`` that streams ``chunks`` × 1 MiB (no Content-Length: chunked), counting what was pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.chunk = b"x" * MIB

    async def __call__(self) -> dict:
        if self.pulled >= self.chunks:
            return {"type": "http.disconnect"}
        self.pulled += 1
        return {"type": "http.request", "body": self.chunk, "more_body": self.pulled < self.chunks}

    @property
    def bytes_read(self) -> int:
        return self.pulled * MIB


def call_asgi(app, method: str, path: str, headers: dict[str, str], receive) -> tuple[int, dict[str, str], bytes]:
    """Drive the app with one raw ASGI request (no test client buffering the body first)."""
    import anyio

    messages = []

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8765)}
    anyio.run(app, scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


@pytest.fixture
def app(config):
    return create_app(config, TOKEN, GatedRunner())


@pytest.mark.parametrize("path", [f"/v1/avatars/{'a' * 32}/render", f"/v1/avatars/{'a' * 32}/animate", "/v1/jobs",
                                  f"/v1/jobs/{'a' * 32}/cancel"])
def test_a_body_without_a_token_costs_nothing(app, path):
    body = Body(64)  # a 64 MiB chunked text/plain POST, as a web page may send to 127.0.0.1 without a preflight
    status, headers, answer = call_asgi(app, "POST", path, {"host": "127.0.0.1:8765", "content-type": "text/plain",
                                                             "transfer-encoding": "chunked"}, body)
    assert status == 401 and b"unauthorized" in answer
    assert body.bytes_read == 0
    assert headers["connection"] == "close"  # the unread body must not be parsed as the next request


def test_a_body_to_a_foreign_host_costs_nothing(app):
    body = Body(16)
    status, headers, answer = call_asgi(app, "POST", "/v1/jobs", {"host": "rebound.example:8765", **AUTH,
                                                                  "transfer-encoding": "chunked"}, body)
    assert status == 400 and b"bad_host" in answer and body.bytes_read == 0 and headers["connection"] == "close"


def test_json_bodies_are_capped_while_they_stream(tmp_path):
    from invertavatar.server.config import ServerConfig

    config = ServerConfig.create(tmp_path / "data", max_json_bytes=2 * MIB)
    app = create_app(config, TOKEN, GatedRunner())
    body = Body(64)
    path = f"/v1/avatars/{'a' * 32}/render"
    status, headers, answer = call_asgi(app, "POST", path, {"host": "127.0.0.1", **AUTH,
                                                            "content-type": "application/json",
                                                            "transfer-encoding": "chunked"}, body)
    assert status == 413 and b"body_too_large" in answer and b"2 MiB" in answer
    assert body.bytes_read <= 3 * MIB  # stopped one chunk past the cap, not after 64 MiB
    assert headers["connection"] == "close"
    # A declared length over the cap is refused before anything is read.
    body = Body(64)
    status, _, answer = call_asgi(app, "POST", path, {"host": "127.0.0.1", **AUTH, "content-length": str(64 * MIB),
                                                      "content-type": "application/json"}, body)
    assert status == 413 and body.bytes_read == 0


def test_uploads_are_capped_while_they_stream(app, config):
    body = Body(64)  # config caps a job at 300 kB
    status, headers, answer = call_asgi(app, "POST", "/v1/jobs", {
        "host": "127.0.0.1", **AUTH, "content-type": "multipart/form-data; boundary=xyz",
        "transfer-encoding": "chunked"}, body)
    assert status == 413 and body.bytes_read <= 3 * MIB and headers["connection"] == "close"
    assert list(config.jobs_dir.iterdir()) == []


# 3. form fields count against the per-job cap ---------------------------------------------------------------------
def test_text_fields_count_against_the_job_cap(client, config):
    from .conftest import image_bytes

    # Ten 60 kB text fields: each under the per-field limit, together twice the 300 kB job cap.
    fields = {f"note{i}": "n" * 60_000 for i in range(10)}
    files = [("files", ("face.jpg", image_bytes(), "image/jpeg"))]
    error = assert_error(client.post("/v1/jobs", files=files, data=fields, headers=AUTH), 413, "job_too_large")
    assert "form fields" in error["message"]
    assert list(config.jobs_dir.iterdir()) == []
    # Under the cap, unknown fields are tolerated (and dropped).
    small = {"note": "n" * 1000, "options": "{}"}
    assert client.post("/v1/jobs", files=files, data=small, headers=AUTH).status_code == 202


def test_only_known_fields_are_kept_in_memory(tmp_path):
    from python_multipart.multipart import MultipartParser

    from invertavatar.server.uploads import Limits, _MultipartSink

    sink = _MultipartSink(tmp_path, Limits(10**6, 10**6, 4))
    parts = [("options", b'{"max_frames": 3}'), ("junk", b"j" * 50_000), ("avatar_id", b"a" * 32)]
    body = b"".join(b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (n.encode(), v)
                    for n, v in parts) + b"--B--\r\n"
    parser = MultipartParser(b"B", sink.callbacks())
    parser.write(body)
    parser.finalize()
    assert sink.error is None and sink.received.fields == {"options": '{"max_frames": 3}', "avatar_id": "a" * 32}
    assert sink.total >= 50_000  # the dropped field was still counted


# 4. JSON that crashes a parser is a 4xx; a 500 says Connection: close ---------------------------------------------
@pytest.mark.parametrize("options, what", [('{"max_frames": ' + "9" * 5000 + "}", "number"),
                                           ("[" * 30000 + "]" * 30000, "nested")], ids=["5000-digits", "nested"])
def test_options_that_crash_the_json_parser_are_refused(client, config, options, what):
    from .conftest import image_bytes

    files = [("files", ("face.jpg", image_bytes(), "image/jpeg"))]
    error = assert_error(client.post("/v1/jobs", files=files, data={"options": options}, headers=AUTH),
                         422, "bad_options")
    assert what in error["message"]
    assert list(config.jobs_dir.iterdir()) == []


@pytest.mark.parametrize("body", ['{"width": ' + "9" * 5000 + "}", "[" * 30000 + "]" * 30000],
                         ids=["5000-digits", "nested"])
def test_json_bodies_that_crash_the_parser_are_refused(client, body):
    response = client.post(f"/v1/avatars/{'a' * 32}/render", content=body, headers={
        **AUTH, "Content-Type": "application/json"})
    error = assert_error(response, 400, "bad_json")
    assert "openapi" in error["hint"]


def test_an_unexpected_error_says_connection_close(client):
    def broken(job_id):
        raise ZeroDivisionError("secret internals")

    client.app.state.service.job = broken
    response = client.get(f"/v1/jobs/{'a' * 32}", headers=AUTH)
    error = assert_error(response, 500, "internal_error")
    assert response.headers["connection"] == "close" and "secret" not in response.text


# 5. malformed animate tracks are a 422 naming the field -----------------------------------------------------------
def good_frame(index: int = 0) -> dict:
    return {"index": index, "time": index / 30, "arkit": [0.0] * 51 + [1], "head_rotation": [1, 0, 0, 0],
            "head_translation": [0.0, 0.0, 0.0], "gaze": {"eye_L": [0.0, 0.1], "eye_R": [0.0, 0.1]}}


@pytest.mark.parametrize("change, field", [
    (lambda f: f["arkit"].__setitem__(3, "0.5"), "tracks.frames.1.arkit.3"),
    (lambda f: f.__setitem__("index", "1"), "tracks.frames.1.index"),
    (lambda f: f["gaze"].__setitem__("eye_L", [0.0, 0.1, 0.2]), "tracks.frames.1.gaze.eye_L"),
    (lambda f: f.__setitem__("head_rotation", [1, 0, 0]), "tracks.frames.1.head_rotation"),
    (lambda f: f.__setitem__("head_translation", [True, 0, 0]), "tracks.frames.1.head_translation.0"),
    (lambda f: f.__setitem__("arkit", [0.0] * 10), "frames[1].arkit has 10 weights"),
], ids=["string-weight", "string-index", "3-vector-gaze", "short-quaternion", "bool-offset", "weight-count"])
def test_malformed_tracks_are_refused_naming_the_field(client, change, field):
    frames = [good_frame(0), good_frame(1)]
    change(frames[1])
    response = client.post(f"/v1/avatars/{'a' * 32}/animate", json={"tracks": {"fps": 30, "frames": frames}},
                           headers=AUTH)
    error = assert_error(response, 422, "invalid_request")
    assert field in error["message"]


def test_well_formed_tracks_pass_the_schema(client):
    tracks = {"fps": 30, "source": "blender", "frames": [good_frame(0), good_frame(1)]}
    response = client.post(f"/v1/avatars/{'a' * 32}/animate", json={"tracks": tracks}, headers=AUTH)
    assert_error(response, 404, "avatar_not_found")  # past validation: only the avatar is missing


# 6. folders that cannot be written --------------------------------------------------------------------------------
def test_unwritable_data_folder_is_a_clear_startup_error(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # (chmod would not stop root, which these tests may run as)
    backend = Path(__file__).resolve().parents[3] / "backend"
    result = subprocess.run([sys.executable, "-m", "invertavatar.server", "--port", "0", "--data-dir",
                             str(blocker / "data")], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(backend)))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write to" in result.stderr and "--data-dir" in result.stderr


@pytest.mark.parametrize("errno_name, code", [("EROFS", "permission"), ("EACCES", "permission"), ("ENOSPC", "disk")])
def test_a_job_that_cannot_write_fails_as_permission_or_disk(config, errno_name, code):
    import errno
    import time

    runner = GatedRunner()
    runner.fail_with = OSError(getattr(errno, errno_name), os_strerror(errno_name), "/home/me/.cache/x")
    runner.gate.set()
    from .conftest import image_bytes

    with TestClient(create_app(config, TOKEN, runner), base_url="http://127.0.0.1:8765") as client:
        job_id = client.post("/v1/jobs", files=[("files", ("f.jpg", image_bytes(), "image/jpeg"))],
                             headers=AUTH).json()["job_id"]
        deadline = time.monotonic() + 20
        while (job := client.get(f"/v1/jobs/{job_id}", headers=AUTH).json())["state"] != "failed":
            assert time.monotonic() < deadline, job
            time.sleep(0.02)
    assert job["error"]["code"] == code and "/home/me/.cache/x" in job["error"]["message"] and job["error"]["hint"]
    assert not (config.jobs_dir / job_id).exists()  # nothing half-written stays behind


def os_strerror(name: str) -> str:
    import errno
    import os

    return os.strerror(getattr(errno, name))


# 7. a server bound to another loopback address answers requests addressed to it -----------------------------------
def test_a_loopback_bind_address_is_an_allowed_host(tmp_path):
    from invertavatar.server.auth import host_allowed
    from invertavatar.server.config import ServerConfig

    config = ServerConfig.create(tmp_path / "data", host="127.0.0.2")
    with TestClient(create_app(config, TOKEN, GatedRunner()), base_url="http://127.0.0.2:8765") as client:
        assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/health", headers={"Host": "127.0.0.3:8765"}).status_code == 400
    assert not host_allowed("192.168.1.5:8765", bind_host="192.168.1.5")  # only a loopback bind widens the set
