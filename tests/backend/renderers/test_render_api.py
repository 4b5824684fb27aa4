"""`POST /v1/avatars/{id}/render` with both renderers, the client's camera, and the 409 for a fit-only avatar."""

from __future__ import annotations

import io
import shutil
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from invertavatar.io.bundle import read_bundle
from invertavatar.render.framing import portrait_camera
from invertavatar.server.app import create_app
from invertavatar.server.config import ServerConfig

TOKEN = "r" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def api(neural_setup, tmp_path_factory):
    _, fit, neural = neural_setup
    config = ServerConfig.create(tmp_path_factory.mktemp("server") / "data", cleanup_interval_s=3600.0)
    app = create_app(config, TOKEN)  # the real runner: the bake job runs the pipeline's bake
    with TestClient(app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False) as client:
        ids = {}
        for name, source in (("fit", fit), ("neural", neural)):
            ids[name] = uuid.uuid4().hex
            shutil.copytree(source, app.state.service.worker.avatar_dir(ids[name]))
            app.state.service.store.put_avatar(ids[name], 1, 1)
        yield client, ids


def _post(client, avatar_id, **body):
    return client.post(f"/v1/avatars/{avatar_id}/render", json={"width": 64, "height": 48, **body}, headers=AUTH)


def _image(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def test_the_answer_names_the_renderer(api):
    client, ids = api
    assert _post(client, ids["fit"]).headers["x-invertavatar-renderer"] == "albedo"
    response = _post(client, ids["neural"])
    assert response.headers["x-invertavatar-renderer"] == "neural" and _image(response).shape == (48, 64, 3)
    assert _post(client, ids["neural"], renderer="albedo").headers["x-invertavatar-renderer"] == "albedo"


def test_neural_on_a_fit_only_avatar_is_409_with_a_hint(api):
    client, ids = api
    response = _post(client, ids["fit"], renderer="neural")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "no_neural_state" and "neural" in error["hint"]


def test_the_client_camera_is_used(api, neural_setup):
    client, ids = api
    bundle = read_bundle(neural_setup[1])
    camera = portrait_camera(bundle.mesh["vertices"], 64, 48, 30.0)
    body = {"camera": {"K": camera.K.tolist(), "R": camera.R.tolist(), "t": camera.t.tolist()}, "renderer": "albedo",
            "background": [0, 1, 0]}
    sent = _image(_post(client, ids["fit"], **body))
    orbit = _image(_post(client, ids["fit"], yaw=30.0, renderer="albedo", background=[0, 1, 0]))
    front = _image(_post(client, ids["fit"], renderer="albedo", background=[0, 1, 0]))
    assert np.abs(sent - orbit).max() <= 1 and np.abs(sent - front).mean() > 1


@pytest.mark.parametrize("camera", [
    {"K": [[0, 0, 32], [0, 100, 24], [0, 0, 1]], "R": np.eye(3).tolist(), "t": [0, 0, 1]},
    {"K": [[100, 0, 32], [0, 100, 24], [0, 0, 1]], "R": (2 * np.eye(3)).tolist(), "t": [0, 0, 1]},
    {"K": [[100, 0, 32], [0, 100, 24]], "R": np.eye(3).tolist(), "t": [0, 0, 1]},
])
def test_bad_cameras_are_422(api, camera):
    client, ids = api
    response = _post(client, ids["fit"], camera=camera)
    assert response.status_code == 422, response.text


def test_bake_job_replaces_the_bundle_with_a_baked_one(api):
    import time

    client, ids = api
    refused = client.post(f"/v1/avatars/{ids['fit']}/bake", headers=AUTH)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_neural_state"
    accepted = client.post(f"/v1/avatars/{ids['neural']}/bake", headers=AUTH)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert job["state"] == "done", job
    assert job["avatar_id"] == ids["neural"]
    folder = client.app.state.service.worker.avatar_dir(ids["neural"])
    assert read_bundle(folder).neural_baked is not None
    # The renders still work on the new bundle (the preview cache follows the folder's identity).
    assert _post(client, ids["neural"]).headers["x-invertavatar-renderer"] == "neural"


def _wait(client, job_id, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end")


def test_animate_job_renders_a_video_of_every_frame(api, tmp_path):
    import time

    import av

    from invertavatar.headmodel.arkit import ARKIT_NAMES

    client, ids = api
    frames = [{"index": i, "arkit": [0.1 * i] * 52, "head_rotation": [1, 0, 0.05 * i, 0]} for i in range(4)]
    tracks = {"fps": 12, "arkit_names": list(ARKIT_NAMES), "frames": frames}
    refused = client.post(f"/v1/avatars/{ids['fit']}/animate", json={"tracks": tracks, "renderer": "neural"},
                          headers=AUTH)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_neural_state"
    bad = client.post(f"/v1/avatars/{ids['fit']}/animate", json={"tracks": {"frames": []}}, headers=AUTH)
    assert bad.status_code == 422
    accepted = client.post(f"/v1/avatars/{ids['fit']}/animate", json={"tracks": tracks, "size": 48}, headers=AUTH)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}/video", headers=AUTH).status_code in (404, 200)
    job = _wait(client, job_id)
    assert job["state"] == "done" and job["avatar_id"] == ids["fit"], job
    response = client.get(f"/v1/jobs/{job_id}/video", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    path = tmp_path / "v.mp4"
    path.write_bytes(response.content)
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == 4
    assert read_bundle(client.app.state.service.worker.avatar_dir(ids["fit"])).manifest["mode"] == "fit"
    # The storage clean-up forgets old jobs, and an animate job's video with it.
    from invertavatar.server.cleanup import clean_storage

    worker = client.app.state.service.worker
    assert worker.video(job_id).is_file()
    clean_storage(worker, protected=set(ids.values()), now=time.time() + 400 * 86400)
    assert not worker.video(job_id).exists()
