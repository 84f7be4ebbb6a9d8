"""Runs queued jobs, one at a time by default, each on its own thread, and records what they report.

Queued jobs start oldest first, at most `max_concurrent` at a time; every state change and everything a job
reports goes to the job store.

States: QUEUED -> RUNNING -> SUCCEEDED | FAILED, (QUEUED | RUNNING) -> CANCELLING -> CANCELLED, and
RUNNING -> QUEUED when a trainer stops or dies under a job (it runs again, resuming from its checkpoint).

Choices:
- Every change is a compare-and-set under one lock (`store.update(..., only_from=...)`), committed together
  with its StateChange event before anything else happens, so a cancel racing a job's end can never move
  a finished job, and a killed process leaves a true record.
- A QUEUED job that is cancelled goes through CANCELLING to CANCELLED in one transaction (two events), so
  the call returns it CANCELLED at once and the stream still shows the documented path. A RUNNING one
  goes to CANCELLING and its `should_stop()` turns true; it saves a final checkpoint and returns, and only
  then is it CANCELLED. A job that raises while cancelling is still CANCELLED (the error is logged).
- Start-up (`recover`): a job a killed predecessor left RUNNING goes back to QUEUED with the warning
  "resuming after a trainer restart" and runs again (`run_job` resumes from its newest checkpoint); one
  left CANCELLING becomes CANCELLED (its last checkpoint stands).
- Shutdown (`stop`): running jobs are asked to stop (they checkpoint) within a time budget and go back to
  QUEUED, so the next start resumes them; their stop checkpoint is recorded with final = false, because the
  job is not over. A job that has not stopped by then is left RUNNING in the store, which is what `recover`
  looks for; what it reports later is dropped.
- start_time is the start of the latest run: it is cleared when a job goes back to QUEUED ("unset while
  QUEUED"), and set again when it runs.
- The job's thread calls the context; `step` also feeds the metrics and `log` also goes to Python logging.

Deliberately not done: priorities, preemption, retry of a FAILED job (submit it again under a new id), a
cap on how often a job that keeps killing its trainer is resumed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.trainer import convert
from services.trainer.jobs import JobContext, JobSpec
from services.trainer.metrics import TrainerMetrics
from services.trainer.store import Event, JobStore

log = logging.getLogger(__name__)
job_log = logging.getLogger("r1.trainer.job")

TERMINAL = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
RESUMING = "resuming after a trainer restart"

RunJob = Callable[[JobSpec, JobContext], None]


@dataclass
class _Run:
    """A job this process runs: its stop flag, why it was set, and what the job reported last."""

    job_id: str
    stage: str
    stop: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    shutdown: bool = False
    step: int = 0
    total_steps: int = 0
    weight_version: int = 0
    thread: threading.Thread | None = None

    def finished(self) -> bool:
        return bool(self.total_steps) and self.step >= self.total_steps


class JobRunner:
    """``runner = JobRunner(store, run_job); runner.start(); runner.submit(...); runner.cancel(...); runner.stop()``"""

    def __init__(self, store: JobStore, run_job: RunJob, *, max_concurrent: int = 1,
                 metrics: TrainerMetrics | None = None):
        self.store = store
        self.run_job = run_job
        self.max_concurrent = max_concurrent
        self.metrics = metrics
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._running: dict[str, _Run] = {}
        self._stopping = False
        self._closed = False  # after stop(): the store may be closed; late reports are dropped
        self._scheduler: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.recover()
        self._scheduler = threading.Thread(target=self._schedule, name="r1-trainer-scheduler", daemon=True)
        self._scheduler.start()

    def recover(self) -> None:
        """Put back what a killed predecessor left RUNNING or CANCELLING (see the module docstring)."""
        with self._lock:
            for row in self.store.jobs(state=pb.JOB_STATE_RUNNING, limit=1 << 30):
                job_id, step = row["job_id"], row["step"]
                log.warning("job %s was RUNNING when the trainer stopped; it goes back to the queue", job_id)
                self.store.update(job_id, {"state": pb.JOB_STATE_QUEUED, "start_time": None}, [
                    convert.log_event(job_id, step, "warning", RESUMING, "r1.trainer.runner"),
                    convert.state_event(job_id, step, pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING,
                                        "the trainer restarted while the job ran; it runs again from its last "
                                        "checkpoint")], only_from=[pb.JOB_STATE_RUNNING])
            for row in self.store.jobs(state=pb.JOB_STATE_CANCELLING, limit=1 << 30):
                job_id = row["job_id"]
                self.store.update(job_id, {"state": pb.JOB_STATE_CANCELLED, "finish_time": time.time()}, [
                    convert.state_event(job_id, row["step"], pb.JOB_STATE_CANCELLED, pb.JOB_STATE_CANCELLING,
                                        "the trainer restarted while the job was cancelling; its last checkpoint "
                                        "stands")], only_from=[pb.JOB_STATE_CANCELLING])

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Ask running jobs to stop (each saves a checkpoint) and wait up to `timeout` seconds for them; they
        go back to QUEUED. Returns the ids of jobs that did not stop in time (left RUNNING for `recover`)."""
        with self._wake:
            self._stopping = True
            for run in self._running.values():
                run.shutdown = True
                run.stop.set()
            self._wake.notify_all()
            threads = [run.thread for run in self._running.values() if run.thread is not None]
        deadline = time.monotonic() + timeout
        if self._scheduler is not None:
            self._scheduler.join(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
            left = sorted(self._running)
        for job_id in left:
            log.warning("job %s did not stop within %.0fs; it resumes from its last checkpoint on the next start",
                        job_id, timeout)
        return left

    @property
    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    # ------------------------------------------------------------------------------------------ requests

    def submit(self, job_id: str, stage: int, request: bytes, output_dir: str,
               max_queued: int | None = None) -> tuple[dict[str, Any] | None, bool]:
        """Queue a job: (the job, True), or (the existing job with that id, False), or (None, False) when
        `max_queued` jobs are queued already."""
        row, created = self.store.insert(
            job_id, stage, pb.JOB_STATE_QUEUED, request, output_dir,
            [convert.state_event(job_id, 0, pb.JOB_STATE_QUEUED, pb.JOB_STATE_UNSPECIFIED, "submitted")],
            max_in_state=max_queued)
        if created:
            self.notify()
        return row, created

    def cancel(self, job_id: str, reason: str = "") -> dict[str, Any] | None:
        """Request cancellation (see the module docstring); the job after, None if unknown."""
        with self._wake:
            row = self.store.get(job_id)
            if row is None:
                return None
            state, step = row["state"], row["step"]
            if state == pb.JOB_STATE_QUEUED:
                row = self.store.update(job_id, {"state": pb.JOB_STATE_CANCELLED, "finish_time": time.time()}, [
                    convert.state_event(job_id, step, pb.JOB_STATE_CANCELLING, state, reason),
                    convert.state_event(job_id, step, pb.JOB_STATE_CANCELLED, pb.JOB_STATE_CANCELLING,
                                        "cancelled before it started")], only_from=[state])
            elif state == pb.JOB_STATE_RUNNING:
                row = self.store.update(job_id, {"state": pb.JOB_STATE_CANCELLING}, [
                    convert.state_event(job_id, step, pb.JOB_STATE_CANCELLING, state,
                                        reason or "cancellation requested")], only_from=[state])
                run = self._running.get(job_id)
                if run is not None:
                    run.cancelled = True
                    run.stop.set()
            self._wake.notify_all()
            return row

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # ------------------------------------------------------------------------------------------ running

    def _schedule(self) -> None:
        while True:
            with self._wake:
                row = None
                while not self._stopping:
                    if len(self._running) < self.max_concurrent:
                        queued = self.store.jobs(state=pb.JOB_STATE_QUEUED, limit=1, oldest_first=True)
                        if queued:
                            row = queued[0]
                            break
                    self._wake.wait(5.0)
                if self._stopping:
                    return
                self._launch(row)

    def _launch(self, row: dict) -> None:
        job_id = row["job_id"]
        updated = self.store.update(job_id, {"state": pb.JOB_STATE_RUNNING, "start_time": time.time()}, [
            convert.state_event(job_id, row["step"], pb.JOB_STATE_RUNNING, pb.JOB_STATE_QUEUED)],
            only_from=[pb.JOB_STATE_QUEUED])
        if updated is None or updated["state"] != pb.JOB_STATE_RUNNING:
            return
        run = _Run(job_id, convert.STAGE_NAMES.get(updated["stage"], "job"), step=updated["step"],
                   total_steps=updated["total_steps"], weight_version=updated["weight_version"])
        run.thread = threading.Thread(target=self._run, args=(updated, run), name=f"r1-job-{job_id}", daemon=True)
        self._running[job_id] = run
        run.thread.start()

    def _run(self, row: dict, run: _Run) -> None:
        error = None
        try:
            self.run_job(convert.spec_of_row(row), self._context(run))
        except Exception as e:  # noqa: BLE001 - a job's failure is the job's record, never the service's
            log.error("job %s failed", run.job_id, exc_info=True)
            error = f"{type(e).__name__}: {e}"
        self._finish(run, error)

    def _finish(self, run: _Run, error: str | None) -> None:
        job_id = run.job_id
        with self._wake:
            self._running.pop(job_id, None)
            self._wake.notify_all()
            if self.metrics is not None:
                self.metrics.forget(job_id)
            if self._closed:
                return
            row = self.store.get(job_id)
            state, step = row["state"], row["step"]
            events: list[Event] = []
            if error is not None:
                events.append(convert.log_event(job_id, step, "error", error, "r1.trainer.runner"))
            if state == pb.JOB_STATE_CANCELLING:
                values = {"state": pb.JOB_STATE_CANCELLED, "finish_time": time.time()}
                message = (f"stopped at step {step}" + (f" with a final checkpoint ({row['last_checkpoint']})"
                                                        if row["last_checkpoint"] else ""))
                if error is not None:
                    message = f"stopped at step {step}; the job raised while stopping: {error}"
                events.append(convert.state_event(job_id, step, pb.JOB_STATE_CANCELLED, state, message))
            elif state != pb.JOB_STATE_RUNNING:
                return
            elif error is not None:
                values = {"state": pb.JOB_STATE_FAILED, "finish_time": time.time(), "error": error}
                events.append(convert.state_event(job_id, step, pb.JOB_STATE_FAILED, state, error))
            elif run.shutdown and not run.finished():
                values = {"state": pb.JOB_STATE_QUEUED, "start_time": None}
                events.append(convert.state_event(job_id, step, pb.JOB_STATE_QUEUED, state,
                                                  f"the trainer is stopping: stopped at step {step}; the job "
                                                  "resumes from its last checkpoint when the trainer starts again"))
            else:
                values = {"state": pb.JOB_STATE_SUCCEEDED, "finish_time": time.time()}
                events.append(convert.state_event(job_id, step, pb.JOB_STATE_SUCCEEDED, state))
            self.store.update(job_id, values, events, only_from=[state])

    def _record(self, run: _Run, values: dict[str, Any], events: list[Event]) -> bool:
        """Store what a job reported, unless the runner has stopped (then it is dropped)."""
        with self._lock:
            if self._closed:
                return False
            self.store.update(run.job_id, values, events)
            return True

    def _context(self, run: _Run) -> JobContext:
        job_id = run.job_id

        def step(number: int, values: dict[str, float]) -> None:
            clean = {str(k): float(v) for k, v in values.items()}
            run.step = int(number)
            if "version" in clean:
                run.weight_version = int(clean["version"])
            if self.metrics is not None:  # gauges first: whoever sees the step in the store sees it on /metrics
                self.metrics.observe_step(job_id, run.step, clean, run.weight_version)
            self._record(run, {"step": run.step, "metrics": json.dumps(clean), "weight_version": run.weight_version},
                         [convert.step_event(job_id, run.step, clean)])

        def checkpoint(number: int, path: str, version: int, final: bool) -> None:
            if final and run.shutdown and not run.cancelled and not run.finished():
                final = False  # stopped for a trainer shutdown: the job goes on after the restart
            run.weight_version = max(run.weight_version, int(version))
            self._record(run, {"last_checkpoint": str(path), "weight_version": run.weight_version},
                         [convert.checkpoint_event(job_id, int(number), str(path), int(version), bool(final))])

        def log_line(level: str, message: str) -> None:
            job_log.log(LOG_LEVELS.get(level, logging.INFO), "[%s] %s", job_id, message)
            self._record(run, {}, [convert.log_event(job_id, run.step, level, message, f"r1.trainer.{run.stage}")])

        def total_steps(n: int) -> None:
            run.total_steps = int(n)
            self._record(run, {"total_steps": run.total_steps}, [])

        def evaluation(benchmark: str, version: int, value: float) -> None:
            if self.metrics is not None:
                self.metrics.observe_evaluation(job_id, benchmark, version, value)

        return JobContext(step=step, log=log_line, checkpoint=checkpoint, total_steps=total_steps,
                          should_stop=run.stop.is_set, evaluation=evaluation)
