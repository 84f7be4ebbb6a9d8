"""Job records and their events in SQLite, so a restarted (or killed) trainer loses none.

One file, WAL journal, every write its own transaction (autocommit), one connection shared by the service's
threads behind a lock: a trainer handles a few jobs and a few writes a second, so simplicity wins over
write concurrency. Jobs keep their submission as the serialized `SubmitJobRequest`; events are serialized
`JobEvent`s in emission order (the AUTOINCREMENT id is the order WatchJob replays and follows).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    stage INTEGER NOT NULL,
    state INTEGER NOT NULL,
    request BLOB NOT NULL,
    output_dir TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    last_checkpoint TEXT NOT NULL DEFAULT '',
    weight_version INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    create_time REAL NOT NULL,
    start_time REAL,
    finish_time REAL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, id);
"""

FIELDS = ("job_id", "stage", "state", "request", "output_dir", "step", "total_steps", "last_checkpoint",
          "weight_version", "error", "metrics", "create_time", "start_time", "finish_time")


class JobStore:
    """store = JobStore(path); store.insert(...); store.get(job_id) -> dict | None; ..."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def insert(self, job_id: str, stage: int, state: int, request: bytes, output_dir: str) -> dict[str, Any]:
        with self._lock:
            self._db.execute("INSERT INTO jobs (job_id, stage, state, request, output_dir, create_time) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (job_id, stage, state, request, output_dir, time.time()))
        return self.get(job_id)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(FIELDS)} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return dict(zip(FIELDS, row)) if row else None

    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise KeyError(f"unknown job fields {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*values.values(), job_id))

    def jobs(self, state: int | None = None, stage: int | None = None, offset: int = 0,
             limit: int = 50) -> list[dict[str, Any]]:
        """Newest first (by create_time, then id)."""
        where, args = [], []
        if state:
            where.append("state = ?")
            args.append(state)
        if stage:
            where.append("stage = ?")
            args.append(stage)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(FIELDS)} FROM jobs {clause} ORDER BY create_time DESC, "
                                    f"rowid DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [dict(zip(FIELDS, row)) for row in rows]

    def count(self, state: int) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]

    def add_event(self, job_id: str, step: int, event: bytes) -> int:
        with self._lock:
            return self._db.execute("INSERT INTO events (job_id, step, event) VALUES (?, ?, ?)",
                                    (job_id, step, event)).lastrowid

    def events(self, job_id: str, after: int = 0) -> list[tuple[int, int, bytes]]:
        """(id, step, serialized JobEvent) of `job_id` after event id `after`, in order."""
        with self._lock:
            return self._db.execute("SELECT id, step, event FROM events WHERE job_id = ? AND id > ? ORDER BY id",
                                    (job_id, after)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
