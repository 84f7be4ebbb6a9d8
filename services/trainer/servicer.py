"""The Trainer RPCs, thin: check the request, record it, let the runner run it; read jobs and events back.

SubmitJob checks everything it can before a job is accepted (stage, datasets, base checkpoint, job id, then
the stage's whole config through the injected `validate_job`, off the event loop), so a bad field is
INVALID_ARGUMENT naming it, never a job that fails later; an existing job_id returns that job unchanged,
whatever the rest of the request. WatchJob reads the store, where every event is committed before it is
visible, so it replays and streams the same way whether the job runs now, ran before a restart, or
finished long ago; the store's commit listener wakes it, with a slow poll as a safety net. from_step
filters the replayed history only; live events all come through.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from r1.errors import InvalidArgument, NotFound, ResourceExhausted
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer import convert
from services.trainer.jobs import JobSpec
from services.trainer.runner import TERMINAL, JobRunner
from services.trainer.store import JobStore

SAFETY_POLL_SECONDS = 2.0


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    """`store` and `runner` are set by the service's start; the readiness gate keeps calls out until then."""

    def __init__(self, jobs_root: str | Path, max_queued: int, validate_job: Callable[[JobSpec], None]):
        self.jobs_root = Path(os.path.abspath(jobs_root))
        self.max_queued = max_queued
        self.validate_job = validate_job
        self.store: JobStore | None = None
        self.runner: JobRunner | None = None

    async def SubmitJob(self, request: pb.SubmitJobRequest, context) -> pb.Job:
        if request.HasField("job_id"):
            convert.check_job_id(request.job_id)
            existing = self.store.get(request.job_id)
            if existing is not None:
                return convert.job_to_proto(existing)
        convert.check_submit(request)
        job_id = request.job_id if request.HasField("job_id") else convert.new_job_id(request.stage)
        output_dir = str(self.jobs_root / job_id)
        if self.store.count(pb.JOB_STATE_QUEUED) >= self.max_queued:
            raise self._full()
        await asyncio.to_thread(self.validate_job, convert.spec_of(job_id, request, output_dir))
        row, _ = self.runner.submit(job_id, request.stage, request.SerializeToString(), output_dir, self.max_queued)
        if row is None:
            raise self._full()
        return convert.job_to_proto(row)  # an id submitted twice at once: the first one's job, unchanged

    async def GetJob(self, request: pb.GetJobRequest, context) -> pb.Job:
        return convert.job_to_proto(self._row(request.job_id))

    async def CancelJob(self, request: pb.CancelJobRequest, context) -> pb.Job:
        self._row(request.job_id)
        return convert.job_to_proto(self.runner.cancel(request.job_id, request.reason))

    async def ListJobs(self, request: pb.ListJobsRequest, context) -> pb.ListJobsResponse:
        state, stage, size = convert.list_filters(request)
        after = convert.read_page_token(request.page_token, state, stage)
        rows = self.store.jobs(state, stage, after, size + 1)
        token = convert.page_token(rows[size - 1], state, stage) if len(rows) > size else ""
        return pb.ListJobsResponse(jobs=[convert.job_to_proto(row) for row in rows[:size]], next_page_token=token)

    async def WatchJob(self, request: pb.WatchJobRequest, context) -> AsyncIterator[pb.JobEvent]:
        self._row(request.job_id)
        job_id = request.job_id
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def committed(changed: str) -> None:  # on whichever thread wrote
            if changed == job_id:
                try:
                    loop.call_soon_threadsafe(wake.set)
                except RuntimeError:  # the loop is closed: the server is gone, nobody waits
                    pass

        unsubscribe = self.store.subscribe(committed)
        try:
            row, seen = self.store.snapshot(job_id)
            yield convert.current_state(row)
            if request.include_history or request.HasField("from_step"):
                for _, step, data in self.store.events(job_id, up_to=seen):
                    if not request.HasField("from_step") or step >= request.from_step:
                        yield pb.JobEvent.FromString(data)
            if row["state"] in TERMINAL:
                return
            while True:
                wake.clear()
                for event_id, _, data in self.store.events(job_id, after=seen):
                    seen = event_id
                    event = pb.JobEvent.FromString(data)
                    yield event
                    if event.WhichOneof("kind") == "state" and event.state.state in TERMINAL:
                        return
                try:
                    await asyncio.wait_for(wake.wait(), SAFETY_POLL_SECONDS)
                except TimeoutError:
                    pass
        finally:
            unsubscribe()

    def _row(self, job_id: str) -> dict:
        if not job_id:
            raise InvalidArgument("job_id", "required")
        row = self.store.get(job_id)
        if row is None:
            raise NotFound(f"no job {job_id!r}; ListJobs shows the known ones")
        return row

    def _full(self) -> ResourceExhausted:
        return ResourceExhausted(f"{self.max_queued} jobs are queued already (trainer.max_queued_jobs); retry later")
