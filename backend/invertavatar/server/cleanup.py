"""Storage clean-up: avatars unused for longer than the age limit go first, then the least recently used ones until
the data folder is under its cap. Every removal is logged with its reason."""

from __future__ import annotations

import logging
import shutil
import time

from .store import ACTIVE_STATES
from .worker import Worker

log = logging.getLogger("invertavatar.server")

DAY_S = 86400.0


def clean_storage(worker: Worker, protected: set[str] | frozenset[str] = frozenset(),
                  now: float | None = None) -> list[str]:
    """Apply the age limit and the storage cap; return the ids of the avatars removed.

    ``protected`` avatars (ones a queued job will refine) are never removed.
    """
    store, config = worker.store, worker.config
    now = time.time() if now is None else now
    cutoff = now - config.max_age_days * DAY_S
    removed: list[str] = []
    with worker.avatar_lock:
        avatars = [a for a in store.list_avatars() if a.id not in protected and not store.active_jobs_for_avatar(a.id)]
        total = sum(a.size_bytes for a in store.list_avatars())
        for avatar in avatars:  # least recently used first
            too_old = avatar.accessed < cutoff
            over_cap = total > config.storage_cap_bytes
            if not (too_old or over_cap):
                continue
            reason = (f"unused for {(now - avatar.accessed) / DAY_S:.1f} days (limit {config.max_age_days:g})"
                      if too_old else f"storage above the cap of {config.storage_cap_bytes / 2**20:.0f} MiB")
            shutil.rmtree(worker.avatar_dir(avatar.id), ignore_errors=True)
            store.delete_avatar(avatar.id)
            total -= avatar.size_bytes
            removed.append(avatar.id)
            log.info("clean-up removed avatar %s (%.1f MiB): %s", avatar.id, avatar.size_bytes / 2**20, reason)
    for job_id in store.old_finished_jobs(cutoff):
        store.delete_job(job_id)
        worker.video(job_id).unlink(missing_ok=True)  # an animate job's result goes with its job
        log.info("clean-up forgot job %s (finished more than %g days ago)", job_id, config.max_age_days)
    _remove_stray_job_folders(worker)
    return removed


def _remove_stray_job_folders(worker: Worker) -> None:
    """Folders of jobs that are no longer active (left by a crash) are removed.

    Uploads in progress live in ``.incoming-*`` folders until their job is recorded; those are left alone for a day.
    """
    if not worker.config.jobs_dir.is_dir():
        return
    active = set(worker.store.job_ids(ACTIVE_STATES))
    for folder in worker.config.jobs_dir.iterdir():
        if folder.name.startswith(".incoming-") and time.time() - folder.stat().st_mtime < DAY_S:
            continue
        if folder.name not in active:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("clean-up removed the leftover job folder %s", folder.name)
