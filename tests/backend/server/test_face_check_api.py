"""The human-face check through the HTTP API: the option reaches the pipeline, the refusal and the artwork warning
reach the job status (the pipeline itself is replaced by a controllable runner, as in test_app.py)."""

from __future__ import annotations

import sqlite3

from invertavatar.errors import InvertAvatarError
from invertavatar.server.store import Store

from .test_app import AUTH, client, runner, submit, wait_state  # noqa: F401 - fixtures

ARTWORK = "portrait.jpg: this looks like an artwork: the texture is the artwork's colours."



def test_accept_any_face_option_is_passed_to_the_pipeline(client, runner):  # noqa: F811
    runner.gate.set()
    job = wait_state(client, submit(client, options={"accept_any_face": True}).json()["job_id"], {"done"})
    assert runner.items[-1].options == {"accept_any_face": True}
    assert job["warnings"] == []
    bad = submit(client, options={"accept_any_face": "sometimes"})
    assert 400 <= bad.status_code < 500 and bad.json()["error"]["code"]


def test_not_a_human_face_reaches_the_job_status(client, runner):  # noqa: F811
    runner.fail_with = InvertAvatarError("not_a_human_face", "dog.jpg does not show a human face: ...",
                                         "Use a photo of a person's face ... --accept-any-face (API option "
                                         "accept_any_face).")
    runner.gate.set()
    job = wait_state(client, submit(client).json()["job_id"], {"failed"})
    assert job["error"]["code"] == "not_a_human_face" and "dog.jpg" in job["error"]["message"]
    assert "accept_any_face" in job["error"]["hint"]


def test_warnings_of_a_finished_job_are_in_its_status(client, runner, monkeypatch):  # noqa: F811
    original = type(runner).__call__

    def with_warning(self, item, progress, cancel):
        manifest = original(self, item, progress, cancel)
        return {**manifest, "warnings": [ARTWORK]}

    monkeypatch.setattr(type(runner), "__call__", with_warning)
    runner.gate.set()
    job = wait_state(client, submit(client).json()["job_id"], {"done"})
    assert job["warnings"] == [ARTWORK]


def test_an_index_made_before_warnings_is_migrated(tmp_path):
    path = tmp_path / "index.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE jobs (
        id TEXT PRIMARY KEY, state TEXT NOT NULL, stage TEXT NOT NULL DEFAULT '', progress REAL NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '', avatar_id TEXT, refine INTEGER NOT NULL DEFAULT 0, options TEXT NOT NULL,
        error TEXT, timings TEXT, created REAL NOT NULL, updated REAL NOT NULL);
        INSERT INTO jobs (id, state, options, created, updated) VALUES ('a', 'done', '{}', 0, 0);""")
    db.commit()
    db.close()
    store = Store(path)
    try:
        assert store.get_job("a").warnings == []
        store.set_state("a", "done", "Finished.", warnings=["w"])
        assert store.get_job("a").warnings == ["w"]
    finally:
        store.close()
