import logging
import time

from invertavatar.server.cleanup import DAY_S, clean_storage
from invertavatar.server.config import ServerConfig
from invertavatar.server.store import Store
from invertavatar.server.worker import Worker


def _worker(tmp_path, **limits):
    config = ServerConfig.create(tmp_path / "data", **limits)
    return Worker(Store(config.index_path), config, runner=None)  # the thread is never started here


def _avatar(worker, ident, size, accessed):
    folder = worker.avatar_dir(ident)
    folder.mkdir(parents=True)
    (folder / "mesh.npz").write_bytes(b"\0" * size)
    worker.store.put_avatar(ident, size, 1)
    worker.store._run("UPDATE avatars SET accessed = ? WHERE id = ?", (accessed, ident))


def test_old_avatars_are_removed_and_logged(tmp_path, caplog):
    worker = _worker(tmp_path, max_age_days=10)
    now = time.time()
    _avatar(worker, "a" * 32, 100, now - 11 * DAY_S)
    _avatar(worker, "b" * 32, 100, now - 1 * DAY_S)
    with caplog.at_level(logging.INFO, logger="invertavatar.server"):
        removed = clean_storage(worker, now=now)
    assert removed == ["a" * 32]
    assert not worker.avatar_dir("a" * 32).exists() and worker.avatar_dir("b" * 32).exists()
    assert worker.store.get_avatar("a" * 32) is None
    assert any("a" * 32 in r.message and "unused for 11.0 days" in r.message for r in caplog.records)


def test_storage_cap_removes_least_recently_used_but_not_protected(tmp_path, caplog):
    worker = _worker(tmp_path, storage_cap_bytes=250)
    now = time.time()
    for i, ident in enumerate(("1" * 32, "2" * 32, "3" * 32, "4" * 32)):
        _avatar(worker, ident, 100, now - (10 - i) * 60)  # "1" is the least recently used
    with caplog.at_level(logging.INFO, logger="invertavatar.server"):
        removed = clean_storage(worker, protected={"1" * 32}, now=now)
    assert removed == ["2" * 32, "3" * 32]
    assert worker.avatar_dir("1" * 32).exists() and worker.avatar_dir("4" * 32).exists()
    assert sum("storage above the cap" in r.message for r in caplog.records) == 2


def test_leftover_job_folders_are_removed(tmp_path):
    worker = _worker(tmp_path)
    worker.store.create_job("f" * 32, {}, None, refine=False)
    (worker.config.jobs_dir / ("f" * 32)).mkdir(parents=True)
    (worker.config.jobs_dir / ("0" * 32)).mkdir()
    (worker.config.jobs_dir / ".incoming-x").mkdir()  # an upload in progress
    clean_storage(worker)
    names = sorted(p.name for p in worker.config.jobs_dir.iterdir())
    assert names == [".incoming-x", "f" * 32]
