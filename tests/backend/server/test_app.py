"""The HTTP layer in-process (FastAPI TestClient) with a controllable runner in place of the pipeline: auth, limits,
content checks, queue, cancel, results and errors. The real pipeline is exercised in test_acceptance.py."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from invertavatar.errors import InvertAvatarError
from invertavatar.server.app import create_app
from invertavatar.server.store import Store

from .conftest import GatedRunner, image_bytes

TOKEN = "t" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def runner():
    runner = GatedRunner()
    yield runner
    runner.gate.set()


@pytest.fixture
def client(config, runner):
    with TestClient(create_app(config, TOKEN, runner), base_url="http://127.0.0.1:8765",
                    raise_server_exceptions=False) as client:
        yield client


def submit(client, files=None, options=None, avatar_id=None, headers=AUTH):
    files = files if files is not None else [("files", ("face.jpg", image_bytes(), "image/jpeg"))]
    data = {"options": json.dumps(options or {})}
    if avatar_id:
        data["avatar_id"] = avatar_id
    return client.post("/v1/jobs", files=files, data=data, headers=headers)


def wait_state(client, job_id, states, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in states:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in response.text
    return body["error"]


def test_health_needs_no_token_and_everything_else_does(client):
    health = client.get("/v1/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["api_version"] == "1" and body["device"]
    assert body["models"]["ict-face-model"]["installed"] in (True, False)
    for info in body["models"].values():
        assert ("path" in info) if info["installed"] else ("hint" in info)
    assert_error(client.get(f"/v1/jobs/{'a' * 32}"), 401, "unauthorized")
    assert_error(client.get(f"/v1/jobs/{'a' * 32}", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    assert_error(submit(client, headers={}), 401, "unauthorized")
    assert_error(client.delete(f"/v1/avatars/{'a' * 32}"), 401, "unauthorized")
    assert client.get("/v1/openapi.json").status_code == 200


def test_foreign_host_header_is_refused(client):
    response = client.get("/v1/health", headers={"Host": "attacker.example:8765"})
    assert_error(response, 400, "bad_host")
    assert client.get("/v1/health", headers={"Host": "localhost:8765"}).status_code == 200


def test_no_cors_headers(client):
    response = client.options("/v1/jobs", headers={"Origin": "http://evil.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def test_text_named_jpg_is_refused_by_content(client, config):
    error = assert_error(submit(client, files=[("files", ("face.jpg", b"just some text\n" * 20, "image/jpeg"))]),
                         415, "unsupported_file_type")
    assert "text" in error["message"] and "content" in error["hint"]
    assert list(config.jobs_dir.iterdir()) == []  # nothing left behind


def test_damaged_image_is_refused_by_the_decoder(client):
    broken = image_bytes("PNG")[:60]  # right magic bytes, truncated data
    error = assert_error(submit(client, files=[("files", ("x.png", broken, "image/png"))]), 415, "unreadable_input")
    assert error["hint"]


def test_upload_caps(client, config):
    big = b"\xff\xd8\xff" + b"\0" * (config.max_file_bytes + 10)
    assert_error(submit(client, files=[("files", ("big.jpg", big, "image/jpeg"))]), 413, "file_too_large")
    parts = [("files", (f"{i}.jpg", b"\xff\xd8\xff" + b"\0" * 150_000, "image/jpeg")) for i in range(3)]
    assert_error(submit(client, files=parts), 413, "job_too_large")
    assert list(config.jobs_dir.iterdir()) == []


def test_bad_requests(client):
    assert_error(submit(client, options={"mode": "magic"}), 422, "bad_options")
    assert_error(client.post("/v1/jobs", files=[("files", ("a.jpg", image_bytes(), "image/jpeg"))],
                             data={"options": "{not json"}, headers=AUTH), 422, "bad_options")
    assert_error(client.post("/v1/jobs", data={"options": "{}"}, files=[("other", ("a", b"x"))], headers=AUTH),
                 422, "no_files")
    assert_error(client.post("/v1/jobs", json={"files": []}, headers=AUTH), 415, "not_multipart")
    assert_error(submit(client, avatar_id="f" * 32), 404, "avatar_not_found")
    assert_error(submit(client, avatar_id="../../etc"), 404, "avatar_not_found")
    assert_error(client.get("/v1/jobs/" + "0" * 32, headers=AUTH), 404, "job_not_found")
    assert_error(client.get("/v1/jobs/not-an-id", headers=AUTH), 422, "invalid_request")


def test_job_runs_to_done_and_bundle_downloads(client, runner):
    response = submit(client, options={"max_frames": 8})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.json()["state"] == "queued"
    runner.started.wait(10)
    running = wait_state(client, job_id, {"running"})
    assert running["stage"] == "detect" and running["progress"] == 0.25
    assert runner.items[0].options == {"max_frames": 8}  # the rest stays with the pipeline's defaults
    assert runner.items[0].inputs[0].name == "face.jpg"
    runner.gate.set()
    done = wait_state(client, job_id, {"done"})
    assert done["progress"] == 1.0 and done["error"] is None and len(done["avatar_id"]) == 32
    bundle = client.get(f"/v1/avatars/{done['avatar_id']}/bundle", headers=AUTH)
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    assert sorted(names) == ["manifest.json", "mesh.npz"]
    assert_error(client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH), 409, "job_finished")


def test_queue_is_bounded(client, runner, config):
    first = submit(client).json()["job_id"]
    runner.started.wait(10)
    wait_state(client, first, {"running"})
    queued = [submit(client) for _ in range(config.queue_size)]
    assert all(r.status_code == 202 for r in queued)
    error = assert_error(submit(client), 503, "queue_full")
    assert "Wait" in error["hint"]
    # Cancelling a waiting job frees its place at once.
    cancelled = client.post(f"/v1/jobs/{queued[0].json()['job_id']}/cancel", headers=AUTH)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert submit(client).status_code == 202


def test_cancel_running_job_leaves_no_avatar(client, runner, config):
    job_id = submit(client).json()["job_id"]
    runner.started.wait(10)
    wait_state(client, job_id, {"running"})
    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=AUTH)
    assert response.status_code == 200
    job = wait_state(client, job_id, {"cancelled"})
    assert job["error"]["code"] == "cancelled" and job["avatar_id"] is None
    assert list(config.avatars_dir.iterdir()) == []
    assert not (config.jobs_dir / job_id).exists()


def test_pipeline_errors_reach_the_client_and_bugs_do_not_leak(client, runner):
    runner.fail_with = InvertAvatarError("no_face", "No face was found in face.jpg.", "Use a photo of a face.")
    runner.gate.set()
    job = wait_state(client, submit(client).json()["job_id"], {"failed"})
    assert job["error"] == {"code": "no_face", "message": "No face was found in face.jpg.",
                            "hint": "Use a photo of a face."}
    runner.fail_with = ZeroDivisionError("secret internals")
    job = wait_state(client, submit(client).json()["job_id"], {"failed"})
    assert job["error"]["code"] == "internal_error" and "secret" not in json.dumps(job)


def test_refine_updates_the_same_avatar_and_delete_rules(client, runner, config):
    runner.gate.set()
    first = wait_state(client, submit(client).json()["job_id"], {"done"})
    avatar_id = first["avatar_id"]
    runner.gate.clear()
    refine = submit(client, avatar_id=avatar_id)
    assert refine.status_code == 202
    refine_id = refine.json()["job_id"]
    wait_state(client, refine_id, {"running"})
    assert_error(client.delete(f"/v1/avatars/{avatar_id}", headers=AUTH), 409, "avatar_busy")
    runner.gate.set()
    done = wait_state(client, refine_id, {"done"})
    assert done["avatar_id"] == avatar_id
    assert runner.items[-1].refine == config.avatars_dir / f"{avatar_id}.avatar"
    manifest = json.loads((config.avatars_dir / f"{avatar_id}.avatar" / "manifest.json").read_text())
    assert manifest["frames"]["used"] == 2
    assert sorted(p.name for p in config.avatars_dir.iterdir()) == [f"{avatar_id}.avatar"]
    assert client.delete(f"/v1/avatars/{avatar_id}", headers=AUTH).status_code == 204
    assert_error(client.get(f"/v1/avatars/{avatar_id}/bundle", headers=AUTH), 404, "avatar_not_found")
    assert_error(client.delete(f"/v1/avatars/{avatar_id}", headers=AUTH), 404, "avatar_not_found")


def test_render_request_validation(client):
    body = {"arkit": {"notAShape": 1.0}}
    assert_error(client.post(f"/v1/avatars/{'a' * 32}/render", json=body, headers=AUTH), 422, "invalid_request")
    body = {"head_rotation": [0, 0, 0, 0]}
    assert_error(client.post(f"/v1/avatars/{'a' * 32}/render", json=body, headers=AUTH), 422, "invalid_request")
    body = {"arkit": {"jawOpen": 0.5}, "width": 64, "height": 64}
    assert_error(client.post(f"/v1/avatars/{'a' * 32}/render", json=body, headers=AUTH), 404, "avatar_not_found")


def test_shutdown_marks_the_running_job_interrupted(config, runner):
    app = create_app(config, TOKEN, runner)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        job_id = submit(client).json()["job_id"]
        runner.started.wait(10)
        wait_state(client, job_id, {"running"})
    # Leaving the block ran the shutdown: the job was stopped, and not reported as cancelled by its owner.
    record = Store(config.index_path).get_job(job_id)
    assert record.state == "failed" and record.error["code"] == "interrupted"
