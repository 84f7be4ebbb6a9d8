"""Job records and their events in SQLite, so a restarted (or killed) trainer loses none.

Choices:
- One file, WAL journal, `synchronous=FULL`: every write is its own committed transaction before the call
  returns, so `kill -9` (or a power cut) leaves every state change that was reported. A job's field update
  and the events it emits go in one transaction: a job never reads FAILED without its StateChange event,
  which is what lets a watcher wait for the terminal event.
- One connection shared by the service's threads behind a lock: a trainer has a few jobs and a few writes
  a second, so simple wins over write concurrency. The lock also makes a read of a job and of its latest
  event id one consistent snapshot (`snapshot`).
- One trainer per database: the store holds an exclusive `flock` on `<database>.lock` while it is open
  (released by the kernel when the process dies, so a restart after `kill -9` gets it back). A second
  trainer on the same file fails to start instead of running the same jobs twice.
- Jobs keep their submission as the serialized `SubmitJobRequest`; events are serialized `JobEvent`s in
  emission order (the AUTOINCREMENT id is the order WatchJob replays and follows), each with the job's step
  when it was emitted (WatchJob's from_step) and its kind. Retention: at most `event_history` events of the
  kinds step, log and checkpoint per job, oldest dropped first; state changes are always kept.
- Listeners (`subscribe`) are called with the job id after each commit that added events, on the writing
  thread; WatchJob uses that to wake instead of polling.

Deliberately not here: what states mean (runner.py) and what the bytes hold (convert.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1.errors import FailedPrecondition

SCHEMA_VERSION = 1
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
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (create_time, job_id);
"""
# Schema 0 (the first trainer service) had no events.kind; its events keep kind '' and are never pruned.
MIGRATIONS = {1: ["ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT ''",
                  "CREATE INDEX IF NOT EXISTS events_by_kind ON events (job_id, kind, id)"]}
PRUNABLE = ("step", "log", "checkpoint")

FIELDS = ("job_id", "stage", "state", "request", "output_dir", "step", "total_steps", "last_checkpoint",
          "weight_version", "error", "metrics", "create_time", "start_time", "finish_time")
MUTABLE = frozenset(FIELDS) - {"job_id", "stage", "request", "output_dir", "create_time"}


@dataclass(frozen=True)
class Event:
    """One event to append: the job's step when it was emitted, its kind (the JobEvent oneof name), bytes."""

    step: int
    kind: str
    data: bytes


class JobStore:
    """``store = JobStore(path)``: jobs as dicts with `FIELDS` keys; events as (id, step, bytes)."""

    def __init__(self, path: str | Path, event_history: int = 10_000):
        self.path = Path(path)
        self.event_history = event_history
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _exclusive_lock(Path(f"{self.path}.lock"))
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._closed = False

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FailedPrecondition(f"{self.path}: job database schema {version} is newer than this trainer's "
                                     f"({SCHEMA_VERSION}); run a newer trainer")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {target}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise FailedPrecondition("the job store is closed (the trainer is stopping)")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ----------------------------------------------------------------------------------------------- jobs

    def insert(self, job_id: str, stage: int, state: int, request: bytes, output_dir: str,
               events: Sequence[Event] = (), max_in_state: int | None = None) -> tuple[dict[str, Any] | None, bool]:
        """Add a job with its first events, unless `job_id` exists: (the job, True if it was added). With
        `max_in_state`, nothing is added when that many jobs are in `state` already: (None, False)."""
        with self._transaction() as db:
            existing = _row(db, job_id)
            if existing is not None:
                return existing, False
            if max_in_state is not None and _count(db, state) >= max_in_state:
                return None, False
            db.execute("INSERT INTO jobs (job_id, stage, state, request, output_dir, create_time) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (job_id, stage, state, request, output_dir, time.time()))
            self._append(db, job_id, events)
            row = _row(db, job_id)
        self._notify(job_id, events)
        return row, True

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            return _row(self._db, job_id)

    def update(self, job_id: str, values: dict[str, Any], events: Sequence[Event] = (),
               only_from: Sequence[int] | None = None) -> dict[str, Any] | None:
        """Set `values` and append `events` in one transaction; the job after, or None if it is unknown.
        only_from: change nothing (and return the job as it is) unless its state is one of these."""
        unknown = set(values) - MUTABLE
        if unknown:
            raise KeyError(f"not updatable job fields: {sorted(unknown)}")
        with self._transaction() as db:
            row = _row(db, job_id)
            if row is None or (only_from is not None and row["state"] not in only_from):
                return row
            if values:
                assignments = ", ".join(f"{name} = ?" for name in values)
                db.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*values.values(), job_id))
            self._append(db, job_id, events)
            row = _row(db, job_id)
        self._notify(job_id, events)
        return row

    def jobs(self, state: int | None = None, stage: int | None = None, before: tuple[float, str] | None = None,
             limit: int = 50, oldest_first: bool = False) -> list[dict[str, Any]]:
        """Newest first by (create_time, job_id), or oldest first; `before`: only jobs after that key in
        this order (keyset pagination: stable while jobs are added)."""
        where, args = [], []
        if state:
            where.append("state = ?")
            args.append(state)
        if stage:
            where.append("stage = ?")
            args.append(stage)
        if before is not None:
            where.append("(create_time, job_id) > (?, ?)" if oldest_first else "(create_time, job_id) < (?, ?)")
            args.extend(before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = "ASC" if oldest_first else "DESC"
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(FIELDS)} FROM jobs {clause} ORDER BY create_time {order}, "
                                    f"job_id {order} LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(FIELDS, row)) for row in rows]

    def count(self, state: int) -> int:
        with self._lock:
            return _count(self._db, state)

    def counts(self) -> dict[int, int]:
        """Jobs per state (states without jobs left out); empty once the store is closed."""
        with self._lock:
            if self._closed:
                return {}
            return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    # --------------------------------------------------------------------------------------------- events

    def events(self, job_id: str, after: int = 0, up_to: int | None = None) -> list[tuple[int, int, bytes]]:
        """(id, step, serialized JobEvent) of `job_id` with after < id (<= up_to), in emission order."""
        with self._lock:
            return self._db.execute(
                "SELECT id, step, event FROM events WHERE job_id = ? AND id > ? AND id <= ? ORDER BY id",
                (job_id, after, up_to if up_to is not None else 1 << 62)).fetchall()

    def snapshot(self, job_id: str) -> tuple[dict[str, Any] | None, int]:
        """The job and the id of its latest event, read together (no event can fall between the two)."""
        with self._lock:
            row = _row(self._db, job_id)
            last = self._db.execute("SELECT MAX(id) FROM events WHERE job_id = ?", (job_id,)).fetchone()[0]
        return row, last or 0

    def subscribe(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call listener(job_id) after every commit that added events; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe

    def _append(self, db: sqlite3.Connection, job_id: str, events: Sequence[Event]) -> None:
        for event in events:
            db.execute("INSERT INTO events (job_id, step, kind, event) VALUES (?, ?, ?, ?)",
                       (job_id, event.step, event.kind, event.data))
        if self.event_history and any(event.kind in PRUNABLE for event in events):
            marks = ", ".join("?" * len(PRUNABLE))
            oldest_kept = db.execute(
                f"SELECT id FROM events WHERE job_id = ? AND kind IN ({marks}) ORDER BY id DESC LIMIT 1 OFFSET ?",
                (job_id, *PRUNABLE, self.event_history - 1)).fetchone()
            if oldest_kept is not None:
                db.execute(f"DELETE FROM events WHERE job_id = ? AND kind IN ({marks}) AND id < ?",
                           (job_id, *PRUNABLE, oldest_kept[0]))

    def _notify(self, job_id: str, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(job_id)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
                self._lock_file.close()  # releases the flock


def _row(db: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    row = db.execute(f"SELECT {', '.join(FIELDS)} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return dict(zip(FIELDS, row)) if row else None


def _count(db: sqlite3.Connection, state: int) -> int:
    return db.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]


def _exclusive_lock(path: Path):
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FailedPrecondition(f"{path.with_suffix('')}: the job database is in use by another trainer "
                                 f"({holder}); give this one its own trainer.database") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
