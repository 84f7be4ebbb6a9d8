"""Runs queued jobs, one at a time by default, each on its own thread, and records what they report.

States: QUEUED -> RUNNING -> SUCCEEDED | FAILED; (QUEUED | RUNNING) -> CANCELLING -> CANCELLED. Every change
is committed to the store and emitted as a StateChange event before anything else happens, so a killed
process leaves a true record. On start-up (`recover`), a job left RUNNING by a previous process goes back
to QUEUED with a log line and runs again: `run_job` resumes it from its newest checkpoint. A job left
CANCELLING is CANCELLED (its last checkpoint stands). On shutdown (`stop`), running jobs are asked to stop
(they save a checkpoint) and are put back to QUEUED, so the next start resumes them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.trainer.jobs import DatasetSpec, JobContext, JobSpec
from services.trainer.store import JobStore

log = logging.getLogger(__name__)

TERMINAL = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)
STAGE_NAMES = {pb.STAGE_GRPO: "grpo", pb.STAGE_SFT: "sft"}
LEVELS = {"debug": pb.LOG_LEVEL_DEBUG, "info": pb.LOG_LEVEL_INFO, "warning": pb.LOG_LEVEL_WARNING,
          "error": pb.LOG_LEVEL_ERROR}


def integral(value):
    """Struct numbers are all doubles: 5.0 back to 5 (a float field still takes an int), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def spec_of(row: dict) -> JobSpec:
    """The library-side job from a stored row (its SubmitJobRequest)."""
    from google.protobuf.json_format import MessageToDict

    request = pb.SubmitJobRequest.FromString(row["request"])
    return JobSpec(
        job_id=row["job_id"], stage=STAGE_NAMES.get(request.stage, ""),
        config=integral(MessageToDict(request.config)) if request.HasField("config") else {},
        datasets=tuple(DatasetSpec(d.uri, d.split or "train", d.name if d.HasField("name") else None,
                                   d.weight if d.HasField("weight") else 1.0) for d in request.datasets),
        base_checkpoint=request.base_checkpoint, output_dir=row["output_dir"],
        generation_target=request.generation_target, verifier_target=request.verifier_target,
        labels=dict(request.labels))


class JobRunner:
    def __init__(self, store: JobStore, run_job: Callable[[JobSpec, JobContext], None], max_concurrent: int = 1,
                 on_metrics: Callable[[str, dict[str, float]], None] | None = None):
        self.store = store
        self.run_job = run_job
        self.max_concurrent = max_concurrent
        self.on_metrics = on_metrics
        self._stop_flags: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._shutting_down = threading.Event()
        self._wake = threading.Condition()
        self._scheduler: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.recover()
        self._scheduler = threading.Thread(target=self._schedule, name="r1-trainer-scheduler", daemon=True)
        self._scheduler.start()

    def recover(self) -> None:
        for row in self.store.jobs(state=pb.JOB_STATE_RUNNING, limit=10_000):
            self.emit_log(row["job_id"], row["step"], "warning", "resuming after a trainer restart")
            self.set_state(row["job_id"], pb.JOB_STATE_QUEUED, "the trainer restarted; the job resumes from its "
                                                               "last checkpoint")
        for row in self.store.jobs(state=pb.JOB_STATE_CANCELLING, limit=10_000):
            self.set_state(row["job_id"], pb.JOB_STATE_CANCELLED, "the trainer restarted while cancelling")

    def stop(self, timeout: float = 30.0) -> None:
        """Ask running jobs to stop (each saves a checkpoint) and wait up to `timeout`; they go back to QUEUED."""
        self._shutting_down.set()
        for flag in list(self._stop_flags.values()):
            flag.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # ------------------------------------------------------------------------------------------ requests

    def cancel(self, job_id: str, reason: str) -> None:
        row = self.store.get(job_id)
        if row["state"] == pb.JOB_STATE_QUEUED:
            self.set_state(job_id, pb.JOB_STATE_CANCELLED, reason or "cancelled before it started")
        elif row["state"] == pb.JOB_STATE_RUNNING:
            self.set_state(job_id, pb.JOB_STATE_CANCELLING, reason or "cancellation requested")
            flag = self._stop_flags.get(job_id)
            if flag is not None:
                flag.set()

    # ------------------------------------------------------------------------------------------ events

    def set_state(self, job_id: str, state: int, message: str = "") -> None:
        row = self.store.get(job_id)
        now = time.time()
        values = {"state": state}
        if state == pb.JOB_STATE_RUNNING and row["start_time"] is None:
            values["start_time"] = now
        if state in TERMINAL:
            values["finish_time"] = now
        if state == pb.JOB_STATE_FAILED:
            values["error"] = message
        self.store.update(job_id, **values)
        self._event(job_id, row["step"], state=pb.StateChange(state=state, previous=row["state"], message=message))

    def emit_log(self, job_id: str, step: int, level: str, message: str) -> None:
        self._event(job_id, step, log=pb.LogLine(level=LEVELS.get(level, pb.LOG_LEVEL_INFO), message=message,
                                                 logger="r1.trainer"))

    def _event(self, job_id: str, at_step: int, **kind) -> None:
        stamp = Timestamp()
        stamp.GetCurrentTime()
        self.store.add_event(job_id, at_step, pb.JobEvent(job_id=job_id, time=stamp, **kind).SerializeToString())

    def _context(self, job_id: str, flag: threading.Event) -> JobContext:
        def step(number: int, values: dict[str, float]) -> None:
            clean = {k: float(v) for k, v in values.items()}
            self.store.update(job_id, step=number, metrics=json.dumps(clean),
                              weight_version=int(clean.get("version", 0)))
            self._event(job_id, number, step=pb.StepMetrics(step=number, values=clean))
            if self.on_metrics is not None:
                self.on_metrics(job_id, {**clean, "step": number})

        def checkpoint(number: int, path: str, version: int, final: bool) -> None:
            self.store.update(job_id, last_checkpoint=path)
            self._event(job_id, number, checkpoint=pb.CheckpointSaved(step=number, path=path, weight_version=version,
                                                                      final=final))

        return JobContext(
            step=step, log=lambda level, message: self.emit_log(job_id, self.store.get(job_id)["step"], level,
                                                                message),
            checkpoint=checkpoint, total_steps=lambda n: self.store.update(job_id, total_steps=int(n)),
            should_stop=flag.is_set)

    # ------------------------------------------------------------------------------------------ running

    def _schedule(self) -> None:
        while not self._shutting_down.is_set():
            self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
            if len(self._threads) < self.max_concurrent:
                queued = self.store.jobs(state=pb.JOB_STATE_QUEUED, limit=10_000)
                if queued:
                    self._launch(min(queued, key=lambda r: r["create_time"]))
                    continue
            with self._wake:
                self._wake.wait(0.5)

    def _launch(self, row: dict) -> None:
        job_id = row["job_id"]
        flag = threading.Event()
        self._stop_flags[job_id] = flag
        self.set_state(job_id, pb.JOB_STATE_RUNNING)
        thread = threading.Thread(target=self._run, args=(row, flag), name=f"r1-job-{job_id}", daemon=True)
        self._threads[job_id] = thread
        thread.start()

    def _run(self, row: dict, flag: threading.Event) -> None:
        job_id = row["job_id"]
        try:
            self.run_job(spec_of(row), self._context(job_id, flag))
        except Exception as e:  # noqa: BLE001 - a job's failure is recorded, never the service's
            log.error("job %s failed: %s", job_id, traceback.format_exc())
            self.emit_log(job_id, self.store.get(job_id)["step"], "error", f"{type(e).__name__}: {e}")
            self.set_state(job_id, pb.JOB_STATE_FAILED, f"{type(e).__name__}: {e}")
            return
        finally:
            self._stop_flags.pop(job_id, None)
        state = self.store.get(job_id)["state"]
        if state == pb.JOB_STATE_CANCELLING:
            self.set_state(job_id, pb.JOB_STATE_CANCELLED, "stopped with a final checkpoint")
        elif self._shutting_down.is_set() and flag.is_set():
            self.set_state(job_id, pb.JOB_STATE_QUEUED, "the trainer is shutting down; the job resumes on restart")
        else:
            self.set_state(job_id, pb.JOB_STATE_SUCCEEDED)
        with self._wake:
            self._wake.notify_all()
