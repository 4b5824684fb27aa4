from invertavatar.server.store import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Store


def test_jobs_and_avatars_persist_across_reopen(tmp_path):
    store = Store(tmp_path / "index.sqlite3")
    job = store.create_job("a" * 32, {"mode": "fit"}, None, refine=False)
    assert job.state == QUEUED and job.options == {"mode": "fit"} and job.error is None
    store.set_state(job.id, RUNNING, "go", progress=0.0)
    store.update_progress(job.id, "track", 0.5, "tracking")
    store.put_avatar("b" * 32, 1234, 3)
    store.set_state(job.id, DONE, "Finished.", avatar_id="b" * 32, progress=1.0, timings={"total": 1.5})
    store.close()

    again = Store(tmp_path / "index.sqlite3")
    job = again.get_job("a" * 32)
    assert (job.state, job.stage, job.progress, job.avatar_id) == (DONE, "track", 1.0, "b" * 32)
    assert job.timings == {"total": 1.5}
    assert again.get_avatar("b" * 32).frames_used == 3
    mode = again._run("PRAGMA journal_mode")[0][0]
    assert mode == "wal"


def test_progress_only_updates_running_jobs(tmp_path):
    store = Store(tmp_path / "i.db")
    store.create_job("c" * 32, {}, None, refine=False)
    store.update_progress("c" * 32, "detect", 0.7, "x")
    assert store.get_job("c" * 32).progress == 0.0  # queued: a late callback must not move it
    store.set_state("c" * 32, CANCELLED, "stop")
    store.update_progress("c" * 32, "detect", 0.9, "x")
    assert store.get_job("c" * 32).state == CANCELLED


def test_mark_interrupted_fails_active_jobs_with_a_clear_error(tmp_path):
    store = Store(tmp_path / "i.db")
    for ident, state in (("1" * 32, QUEUED), ("2" * 32, RUNNING), ("3" * 32, DONE)):
        store.create_job(ident, {}, None, refine=False)
        store.set_state(ident, state, state)
    assert sorted(store.mark_interrupted()) == ["1" * 32, "2" * 32]
    job = store.get_job("2" * 32)
    assert job.state == FAILED and job.error["code"] == "interrupted" and "again" in job.error["hint"]
    assert store.get_job("3" * 32).state == DONE


def test_avatar_refine_bookkeeping(tmp_path):
    store = Store(tmp_path / "i.db")
    store.put_avatar("d" * 32, 10, 1)
    created = store.get_avatar("d" * 32).created
    store.create_job("e" * 32, {}, "d" * 32, refine=True)
    assert store.active_jobs_for_avatar("d" * 32) == ["e" * 32]
    store.put_avatar("d" * 32, 20, 2)  # the refinement replaced the files
    avatar = store.get_avatar("d" * 32)
    assert (avatar.size_bytes, avatar.frames_used, avatar.created) == (20, 2, created)
    store.set_state("e" * 32, DONE, "ok")
    assert store.active_jobs_for_avatar("d" * 32) == []
