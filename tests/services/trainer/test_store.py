"""The SQLite job store: rows and events round-trip, survive a re-open and a `kill -9` right after a write,
compare-and-set updates, keyset pages, event retention, one trainer per file, the first schema migrated."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from r1.errors import FailedPrecondition
from services.trainer.store import SCHEMA_VERSION, Event, JobStore

QUEUED, RUNNING, SUCCEEDED = 1, 2, 3


def add(store: JobStore, job_id: str, events=(), **kwargs):
    return store.insert(job_id, 1, QUEUED, b"request-" + job_id.encode(), f"/jobs/{job_id}", events, **kwargs)


def test_a_job_and_its_events_round_trip_and_survive_a_reopen(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    row, created = add(store, "a", [Event(0, "state", b"queued")])
    assert created and row["state"] == QUEUED and row["request"] == b"request-a" and row["step"] == 0
    assert row["start_time"] is None and row["metrics"] == "{}"
    store.update("a", {"state": RUNNING, "step": 3, "metrics": '{"loss": 1.5}', "start_time": 12.5},
                 [Event(1, "step", b"s1"), Event(3, "checkpoint", b"c3")])
    store.close()

    store = JobStore(tmp_path / "jobs.sqlite3")
    row = store.get("a")
    assert (row["state"], row["step"], row["metrics"], row["start_time"]) == (RUNNING, 3, '{"loss": 1.5}', 12.5)
    events = store.events("a")
    assert [(step, data) for _, step, data in events] == [(0, b"queued"), (1, b"s1"), (3, b"c3")]
    assert [data for _, _, data in store.events("a", after=events[0][0])] == [b"s1", b"c3"]
    assert store.snapshot("a") == (row, events[-1][0]) and store.snapshot("nobody") == (None, 0)
    assert store.get("nobody") is None and store.counts() == {RUNNING: 1}
    store.close()


def test_insert_is_idempotent_and_bounded_and_update_is_a_compare_and_set(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    first, _ = add(store, "a")
    assert store.insert("a", 2, RUNNING, b"other", "/elsewhere") == (first, False)
    assert add(store, "b", max_in_state=1) == (None, False)  # one QUEUED already
    assert store.get("b") is None
    assert store.update("a", {"state": SUCCEEDED}, [Event(0, "state", b"x")], only_from=[RUNNING])["state"] == QUEUED
    assert store.events("a") == []  # refused: nothing written, not even the event
    assert store.update("nobody", {"step": 1}) is None
    with pytest.raises(KeyError):
        store.update("a", {"job_id": "b"})
    store.close()


def test_pages_are_newest_first_and_stable_while_jobs_are_added(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    for name in "abcde":
        add(store, name)
    store.update("c", {"state": RUNNING})
    page = store.jobs(limit=2)
    assert [r["job_id"] for r in page] == ["e", "d"]
    add(store, "f")
    after = (page[-1]["create_time"], page[-1]["job_id"])
    assert [r["job_id"] for r in store.jobs(before=after, limit=10)] == ["c", "b", "a"]
    assert [r["job_id"] for r in store.jobs(state=QUEUED, limit=10)] == ["f", "e", "d", "b", "a"]
    assert [r["job_id"] for r in store.jobs(state=QUEUED, limit=2, oldest_first=True)] == ["a", "b"]
    assert store.jobs(stage=2) == []
    store.close()


def test_retention_drops_the_oldest_steps_and_logs_but_keeps_every_state_change(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3", event_history=3)
    add(store, "a", [Event(0, "state", b"queued")])
    for step in range(1, 6):
        store.update("a", {}, [Event(step, "step", f"s{step}".encode()), Event(step, "log", f"l{step}".encode())])
    store.update("a", {}, [Event(5, "state", b"done")])
    assert [data for _, _, data in store.events("a")] == [b"queued", b"l4", b"s5", b"l5", b"done"]
    store.close()


def test_one_trainer_per_database(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    with pytest.raises(FailedPrecondition, match="in use by another trainer"):
        JobStore(tmp_path / "jobs.sqlite3")
    store.close()
    JobStore(tmp_path / "jobs.sqlite3").close()  # the lock went with the first store


def test_a_write_survives_kill_9_right_after_it_returned(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from services.trainer.store import Event, JobStore
        store = JobStore({str(tmp_path / 'jobs.sqlite3')!r})
        store.insert("a", 1, 1, b"r", "/a", [Event(0, "state", b"queued")])
        store.update("a", {{"state": 2, "step": 7}}, [Event(7, "step", b"s7")])
        print("written", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "written"
    finally:
        child.kill()  # SIGKILL: no close, no checkpoint of the WAL
        child.wait()
    store = JobStore(tmp_path / "jobs.sqlite3")
    assert (store.get("a")["state"], store.get("a")["step"]) == (RUNNING, 7)
    assert [data for _, _, data in store.events("a")] == [b"queued", b"s7"]
    store.close()


def test_a_database_of_the_first_schema_is_migrated(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, stage INTEGER NOT NULL, state INTEGER NOT NULL,
            request BLOB NOT NULL, output_dir TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0,
            total_steps INTEGER NOT NULL DEFAULT 0, last_checkpoint TEXT NOT NULL DEFAULT '',
            weight_version INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',
            metrics TEXT NOT NULL DEFAULT '{}', create_time REAL NOT NULL, start_time REAL, finish_time REAL);
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, step INTEGER NOT NULL,
            event BLOB NOT NULL);
        INSERT INTO jobs (job_id, stage, state, request, output_dir, create_time) VALUES ('old', 1, 3, x'', '/o', 1.0);
        INSERT INTO events (job_id, step, event) VALUES ('old', 0, x'01');
    """)
    db.commit()
    db.close()
    store = JobStore(path, event_history=1)
    assert store.get("old")["state"] == SUCCEEDED
    store.update("old", {}, [Event(1, "step", b"s1"), Event(2, "step", b"s2")])
    assert [data for _, _, data in store.events("old")] == [b"\x01", b"s2"]  # old events are never pruned
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()
