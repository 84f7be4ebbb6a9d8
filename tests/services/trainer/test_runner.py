"""The runner's state machine on a real store with a real (small) job function: success, failure, both kinds
of cancellation, concurrency, recovery after a kill, a clean stop that resumes, and a job that overstays."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.trainer import convert
from services.trainer.metrics import TrainerMetrics
from services.trainer.runner import RESUMING, JobRunner
from services.trainer.store import JobStore
from tests.services.trainer.jobs_for_tests import counting_job

S = pb.JobState


@contextlib.contextmanager
def running(root: Path, run_job=counting_job, store: JobStore | None = None, **kwargs):
    store = store or JobStore(root / "jobs.sqlite3")
    runner = JobRunner(store, run_job, **kwargs)
    runner.start()
    try:
        yield store, runner
    finally:
        runner.stop(10)
        store.close()


def submit(runner: JobRunner, root: Path, job_id: str, steps: int = 3, pause: int = 1, **labels) -> dict:
    request = pb.SubmitJobRequest(stage=pb.STAGE_GRPO, config=convert.config_struct(
        {"grpo": {"steps": steps}, "eval": {"every": pause}}), datasets=[pb.DatasetRef(uri="synthetic")],
        base_checkpoint="teacher", labels=labels)
    row, created = runner.submit(job_id, pb.STAGE_GRPO, request.SerializeToString(), str(root / job_id))
    assert created
    return row


def wait_for(store: JobStore, job_id: str, *states: int, step: int = 0, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (row := store.get(job_id))["state"] not in states or row["step"] < step:
        assert time.monotonic() < deadline, f"{job_id} still {S.Name(row['state'])} at step {row['step']}"
        time.sleep(0.01)
    return row


def events(store: JobStore, job_id: str) -> list[pb.JobEvent]:
    return [pb.JobEvent.FromString(data) for _, _, data in store.events(job_id)]


def changes(store: JobStore, job_id: str) -> list[tuple[str, str]]:
    return [(S.Name(e.state.previous), S.Name(e.state.state)) for e in events(store, job_id)
            if e.WhichOneof("kind") == "state"]


def of_kind(store: JobStore, job_id: str, kind: str) -> list:
    return [getattr(e, kind) for e in events(store, job_id) if e.WhichOneof("kind") == kind]


def test_a_job_runs_to_success_reporting_steps_checkpoints_and_fields(tmp_path):
    with running(tmp_path) as (store, runner):
        submit(runner, tmp_path, "ok", steps=3)
        row = wait_for(store, "ok", S.Value("JOB_STATE_SUCCEEDED"))
        assert changes(store, "ok") == [("JOB_STATE_UNSPECIFIED", "JOB_STATE_QUEUED"),
                                        ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING"),
                                        ("JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")]
        assert [s.step for s in of_kind(store, "ok", "step")] == [1, 2, 3]
        assert [(c.step, c.weight_version, c.final) for c in of_kind(store, "ok", "checkpoint")] == [
            (1, 1, False), (2, 2, False), (3, 3, True)]
    assert (row["step"], row["total_steps"], row["weight_version"]) == (3, 3, 3)
    assert row["last_checkpoint"] == str(tmp_path / "ok" / "state.json")
    assert json.loads(row["metrics"]) == {"reward_mean": 1.0, "accuracy": 0.5, "version": 3.0}
    assert row["create_time"] <= row["start_time"] <= row["finish_time"] and row["error"] == ""


def test_a_failing_job_is_failed_with_its_error(tmp_path):
    with running(tmp_path) as (store, runner):
        submit(runner, tmp_path, "bad", steps=5, fail_at="2")
        row = wait_for(store, "bad", S.Value("JOB_STATE_FAILED"))
        logs, states = of_kind(store, "bad", "log"), of_kind(store, "bad", "state")
    assert row["error"] == "RuntimeError: failing at step 2 as asked" and row["step"] == 1
    assert states[-1].message == row["error"] and row["finish_time"] is not None
    assert (logs[-1].level, logs[-1].message) == (pb.LOG_LEVEL_ERROR, row["error"])


def test_jobs_run_oldest_first_one_at_a_time_and_a_queued_one_is_cancelled_at_once(tmp_path):
    with running(tmp_path) as (store, runner):
        for name in ("first", "second", "third"):
            submit(runner, tmp_path, name, steps=2)
        cancelled = runner.cancel("third", "not needed")
        assert cancelled["state"] == S.Value("JOB_STATE_CANCELLED") and cancelled["start_time"] is None
        first, second = (wait_for(store, n, S.Value("JOB_STATE_SUCCEEDED")) for n in ("first", "second"))
        assert first["finish_time"] <= second["start_time"]
        assert changes(store, "third")[1:] == [("JOB_STATE_QUEUED", "JOB_STATE_CANCELLING"),
                                               ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")]
        assert of_kind(store, "third", "state")[1].message == "not needed"
        assert not of_kind(store, "third", "checkpoint")
        before = store.events("first")
        assert runner.cancel("first") == store.get("first") and store.events("first") == before  # terminal
        assert runner.cancel("nobody") is None


def test_cancelling_a_running_job_stops_it_after_a_final_checkpoint(tmp_path):
    registry = CollectorRegistry()
    with running(tmp_path, metrics=TrainerMetrics(registry)) as (store, runner):
        submit(runner, tmp_path, "long", steps=1000)
        wait_for(store, "long", S.Value("JOB_STATE_RUNNING"), step=2)
        assert registry.get_sample_value("r1_trainer_step", {"job_id": "long"}) >= 2
        assert runner.cancel("long", "enough")["state"] == S.Value("JOB_STATE_CANCELLING")
        row = wait_for(store, "long", S.Value("JOB_STATE_CANCELLED"))
        final = of_kind(store, "long", "checkpoint")[-1]
        states = of_kind(store, "long", "state")
        assert registry.get_sample_value("r1_trainer_step", {"job_id": "long"}) is None
    assert final.final and final.step == row["step"] < 1000 and row["last_checkpoint"] == final.path
    assert [(S.Name(s.state), s.message) for s in states[-2:]] == [
        ("JOB_STATE_CANCELLING", "enough"),
        ("JOB_STATE_CANCELLED", f"stopped at step {row['step']} with a final checkpoint ({final.path})")]


def test_a_job_that_raises_while_cancelling_is_still_cancelled(tmp_path):
    with running(tmp_path) as (store, runner):
        submit(runner, tmp_path, "messy", steps=1000, raise_on_stop="1")
        wait_for(store, "messy", S.Value("JOB_STATE_RUNNING"), step=1)
        runner.cancel("messy")
        row = wait_for(store, "messy", S.Value("JOB_STATE_CANCELLED"))
        message = of_kind(store, "messy", "state")[-1].message
    assert row["error"] == "" and "RuntimeError: could not save on the way out" in message


def test_max_concurrent_jobs_run_side_by_side(tmp_path):
    with running(tmp_path, max_concurrent=2) as (store, runner):
        for name in ("a", "b", "c"):
            submit(runner, tmp_path, name, steps=1000)
        wait_for(store, "a", S.Value("JOB_STATE_RUNNING"), step=1)
        wait_for(store, "b", S.Value("JOB_STATE_RUNNING"), step=1)
        assert store.get("c")["state"] == S.Value("JOB_STATE_QUEUED") and runner.running == ["a", "b"]
        runner.cancel("a")
        wait_for(store, "c", S.Value("JOB_STATE_RUNNING"))
        for name in ("b", "c"):
            runner.cancel(name)
            wait_for(store, name, S.Value("JOB_STATE_CANCELLED"))


def test_recovery_requeues_a_killed_running_job_and_finishes_a_cancelling_one(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    runner = JobRunner(store, counting_job)  # not started: only used to record the jobs
    for name in ("was-running", "was-cancelling"):
        submit(runner, tmp_path, name, steps=4)
    (tmp_path / "was-running").mkdir()
    (tmp_path / "was-running" / "state.json").write_text('{"step": 2}')  # its checkpoint before the kill
    store.update("was-running", {"state": S.Value("JOB_STATE_RUNNING"), "step": 3, "start_time": 1.0})
    store.update("was-cancelling", {"state": S.Value("JOB_STATE_CANCELLING"), "step": 1})
    with running(tmp_path, store=store) as (store, runner):
        cancelled = wait_for(store, "was-cancelling", S.Value("JOB_STATE_CANCELLED"))
        done = wait_for(store, "was-running", S.Value("JOB_STATE_SUCCEEDED"))
        logs = [(log.level, log.message) for log in of_kind(store, "was-running", "log")]
        states = changes(store, "was-running")
    assert cancelled["finish_time"] is not None and done["step"] == 4
    assert logs[:2] == [(pb.LOG_LEVEL_WARNING, RESUMING), (pb.LOG_LEVEL_INFO, "resumed from step 2")]
    assert states[-3:] == [("JOB_STATE_RUNNING", "JOB_STATE_QUEUED"), ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING"),
                           ("JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")]
    assert (tmp_path / "was-running" / "resumed").read_text() == "2\n"


def test_a_clean_stop_checkpoints_running_jobs_and_the_next_start_resumes_them(tmp_path):
    with running(tmp_path) as (store, runner):
        submit(runner, tmp_path, "long", steps=40)
        wait_for(store, "long", S.Value("JOB_STATE_RUNNING"), step=2)
        assert runner.stop(10) == []
        row = store.get("long")
        last = of_kind(store, "long", "checkpoint")[-1]
        assert row["state"] == S.Value("JOB_STATE_QUEUED") and row["start_time"] is None
        assert last.step == row["step"] < 40 and not last.final  # not the job's last checkpoint
    with running(tmp_path) as (store, runner):
        done = wait_for(store, "long", S.Value("JOB_STATE_SUCCEEDED"))
        assert of_kind(store, "long", "checkpoint")[-1].final
    assert done["step"] == 40 and (tmp_path / "long" / "resumed").read_text() == f"{row['step']}\n"


def test_a_job_that_ignores_stop_is_left_running_for_the_next_start(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    runner = JobRunner(store, counting_job)
    runner.start()
    submit(runner, tmp_path, "stubborn", steps=150, ignore_stop="1")
    wait_for(store, "stubborn", S.Value("JOB_STATE_RUNNING"), step=1)
    assert runner.stop(0.2) == ["stubborn"]
    seen = len(store.events("stubborn"))
    store.close()  # the job goes on reporting into a closed store: dropped, not raised
    time.sleep(0.1)
    store = JobStore(tmp_path / "jobs.sqlite3")
    assert store.get("stubborn")["state"] == S.Value("JOB_STATE_RUNNING") and len(store.events("stubborn")) == seen
    store.close()
