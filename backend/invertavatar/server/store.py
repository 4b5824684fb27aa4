"""The job and avatar index: one SQLite file (WAL) under the data dir. Files live next to it; rows point to them."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (DONE, FAILED, CANCELLED)
INTERRUPTED = {"code": "interrupted", "message": "The backend stopped before this job finished.",
               "hint": "Submit the job again."}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, stage TEXT NOT NULL DEFAULT '', progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '', avatar_id TEXT, refine INTEGER NOT NULL DEFAULT 0, options TEXT NOT NULL,
    error TEXT, timings TEXT, created REAL NOT NULL, updated REAL NOT NULL, warnings TEXT);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS avatars (
    id TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, frames_used INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL, accessed REAL NOT NULL);
"""


@dataclass
class JobRecord:
    """One row of ``jobs``; ``error`` is ``{"code", "message", "hint"}`` or None."""

    id: str
    state: str
    stage: str
    progress: float
    message: str
    avatar_id: str | None
    refine: bool
    options: dict[str, Any]
    error: dict[str, str] | None
    timings: dict[str, float] | None
    created: float
    updated: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class AvatarRecord:
    """One row of ``avatars``; its files are ``avatars/<id>.avatar/``."""

    id: str
    size_bytes: int
    frames_used: int
    created: float
    updated: float
    accessed: float = field(default=0.0)


class Store:
    """Thread-safe access to the index. One connection guarded by a lock: calls are short and few."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "warnings" not in columns:  # an index made before job warnings existed
                self._db.execute("ALTER TABLE jobs ADD COLUMN warnings TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # jobs -------------------------------------------------------------------------------------------------------
    def create_job(self, job_id: str, options: dict[str, Any], avatar_id: str | None, refine: bool) -> JobRecord:
        now = time.time()
        self._run("INSERT INTO jobs (id, state, message, avatar_id, refine, options, created, updated) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (job_id, QUEUED, "Waiting for the worker.", avatar_id, int(refine), json.dumps(options), now, now))
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str) -> JobRecord | None:
        rows = self._run("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def update_progress(self, job_id: str, stage: str, progress: float, message: str) -> None:
        self._run("UPDATE jobs SET stage = ?, progress = ?, message = ?, updated = ? WHERE id = ? AND state = ?",
                  (stage, progress, message, time.time(), job_id, RUNNING))

    def set_state(self, job_id: str, state: str, message: str, *, error: dict[str, str] | None = None,
                  avatar_id: str | None = None, progress: float | None = None,
                  timings: dict[str, float] | None = None, warnings: list[str] | None = None) -> None:
        """Move a job to ``state``; ``avatar_id``/``progress``/``timings``/``warnings`` are kept when not given."""
        self._run("UPDATE jobs SET state = ?, message = ?, error = ?, avatar_id = COALESCE(?, avatar_id), "
                  "progress = COALESCE(?, progress), timings = COALESCE(?, timings), "
                  "warnings = COALESCE(?, warnings), updated = ? WHERE id = ?",
                  (state, message, json.dumps(error) if error else None, avatar_id, progress,
                   json.dumps(timings) if timings else None, json.dumps(warnings) if warnings else None,
                   time.time(), job_id))

    def count_jobs(self, states: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(states))
        return int(self._run(f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", states)[0][0])

    def job_ids(self, states: tuple[str, ...]) -> list[str]:
        marks = ",".join("?" * len(states))
        return [r["id"] for r in self._run(f"SELECT id FROM jobs WHERE state IN ({marks}) ORDER BY created", states)]

    def active_jobs_for_avatar(self, avatar_id: str) -> list[str]:
        return [r["id"] for r in self._run("SELECT id FROM jobs WHERE avatar_id = ? AND refine = 1 AND state IN (?, ?)",
                                           (avatar_id, *ACTIVE_STATES))]

    def mark_interrupted(self) -> list[str]:
        """Fail every job a previous run left queued or running; return their ids."""
        ids = self.job_ids(ACTIVE_STATES)
        for job_id in ids:
            self.set_state(job_id, FAILED, INTERRUPTED["message"], error=INTERRUPTED)
        return ids

    def old_finished_jobs(self, before: float) -> list[str]:
        rows = self._run("SELECT id FROM jobs WHERE state IN (?, ?, ?) AND updated < ?", (*FINAL_STATES, before))
        return [r["id"] for r in rows]

    def delete_job(self, job_id: str) -> None:
        self._run("DELETE FROM jobs WHERE id = ?", (job_id,))

    # avatars ----------------------------------------------------------------------------------------------------
    def put_avatar(self, avatar_id: str, size_bytes: int, frames_used: int) -> None:
        """Insert a new avatar or record that a refinement replaced its files."""
        now = time.time()
        self._run("INSERT INTO avatars (id, size_bytes, frames_used, created, updated, accessed) "
                  "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET size_bytes = excluded.size_bytes, "
                  "frames_used = excluded.frames_used, updated = excluded.updated, accessed = excluded.accessed",
                  (avatar_id, size_bytes, frames_used, now, now, now))

    def get_avatar(self, avatar_id: str) -> AvatarRecord | None:
        rows = self._run("SELECT * FROM avatars WHERE id = ?", (avatar_id,))
        return AvatarRecord(**dict(rows[0])) if rows else None

    def touch_avatar(self, avatar_id: str) -> None:
        self._run("UPDATE avatars SET accessed = ? WHERE id = ?", (time.time(), avatar_id))

    def list_avatars(self) -> list[AvatarRecord]:
        """All avatars, least recently used first (the order clean-up removes them in)."""
        return [AvatarRecord(**dict(r)) for r in self._run("SELECT * FROM avatars ORDER BY accessed, updated")]

    def delete_avatar(self, avatar_id: str) -> None:
        self._run("DELETE FROM avatars WHERE id = ?", (avatar_id,))


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(id=row["id"], state=row["state"], stage=row["stage"], progress=row["progress"],
                     message=row["message"], avatar_id=row["avatar_id"], refine=bool(row["refine"]),
                     options=json.loads(row["options"]), error=json.loads(row["error"]) if row["error"] else None,
                     timings=json.loads(row["timings"]) if row["timings"] else None,
                     created=row["created"], updated=row["updated"],
                     warnings=json.loads(row["warnings"]) if row["warnings"] else [])
