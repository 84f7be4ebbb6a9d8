"""The Trainer RPCs, thin: check the request, record it, let the runner run it; read jobs and events back.

SubmitJob checks everything it can before a job is accepted (stage, datasets, base checkpoint, job id, and
the stage's whole config through `validate_job`), so a bad field is INVALID_ARGUMENT naming it, never a job
that fails later. WatchJob follows the store (events are committed before they are visible), so it replays
and streams the same way whether the job runs now, ran before a restart, or finished long ago.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from r1.errors import InvalidArgument, NotFound, ResourceExhausted
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer.jobs import JobSpec
from services.trainer.runner import TERMINAL, JobRunner, spec_of
from services.trainer.store import JobStore

JOB_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
POLL_SECONDS = 0.2


def _timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def job_message(row: dict) -> pb.Job:
    request = pb.SubmitJobRequest.FromString(row["request"])
    job = pb.Job(job_id=row["job_id"], stage=row["stage"], state=row["state"], config=request.config,
                 datasets=request.datasets, base_checkpoint=request.base_checkpoint,
                 generation_target=request.generation_target, verifier_target=request.verifier_target,
                 labels=request.labels, step=row["step"], total_steps=row["total_steps"],
                 last_checkpoint=row["last_checkpoint"], weight_version=row["weight_version"], error=row["error"],
                 output_dir=row["output_dir"], metrics=json.loads(row["metrics"]))
    for name in ("create_time", "start_time", "finish_time"):
        stamp = _timestamp(row[name])
        if stamp is not None:
            getattr(job, name).CopyFrom(stamp)
    return job


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    """`store` and `runner` are set by the service's start; the readiness gate keeps calls out until then."""

    def __init__(self, jobs_root: Path, max_queued: int, validate: Callable[[JobSpec], None]):
        self.jobs_root = jobs_root
        self.max_queued = max_queued
        self.validate = validate
        self.store: JobStore | None = None
        self.runner: JobRunner | None = None

    async def SubmitJob(self, request: pb.SubmitJobRequest, context) -> pb.Job:
        if request.HasField("job_id"):
            if not JOB_ID.match(request.job_id):
                raise InvalidArgument("job_id", "1-63 characters of [a-z0-9-_], starting with a letter or digit")
            existing = self.store.get(request.job_id)
            if existing is not None:
                return job_message(existing)
        if request.stage not in (pb.STAGE_GRPO, pb.STAGE_SFT):
            raise InvalidArgument("stage", "required: STAGE_GRPO or STAGE_SFT")
        if not request.datasets:
            raise InvalidArgument("datasets", "at least one dataset (uri \"synthetic\" for generated problems)")
        for i, dataset in enumerate(request.datasets):
            if not dataset.uri:
                raise InvalidArgument(f"datasets[{i}].uri", "required")
        if not request.base_checkpoint:
            raise InvalidArgument("base_checkpoint", "required: a checkpoint directory, a hub id, or \"teacher\"")
        if self.store.count(pb.JOB_STATE_QUEUED) >= self.max_queued:
            raise ResourceExhausted(f"{self.max_queued} jobs are queued already; retry later")
        job_id = request.job_id if request.HasField("job_id") else f"job-{uuid.uuid4().hex[:12]}"
        row = {"job_id": job_id, "request": request.SerializeToString(),
               "output_dir": str(self.jobs_root / job_id)}
        await asyncio.to_thread(self.validate, spec_of(row))
        self.store.insert(job_id, request.stage, pb.JOB_STATE_QUEUED, row["request"], row["output_dir"])
        self.runner.set_state(job_id, pb.JOB_STATE_QUEUED, "submitted")
        self.runner.notify()
        return job_message(self.store.get(job_id))

    async def GetJob(self, request: pb.GetJobRequest, context) -> pb.Job:
        return job_message(self._row(request.job_id))

    async def CancelJob(self, request: pb.CancelJobRequest, context) -> pb.Job:
        self._row(request.job_id)
        self.runner.cancel(request.job_id, request.reason)
        return job_message(self._row(request.job_id))

    async def ListJobs(self, request: pb.ListJobsRequest, context) -> pb.ListJobsResponse:
        size = min(request.page_size or 50, 1000)
        try:
            offset = int(request.page_token or 0)
        except ValueError:
            raise InvalidArgument("page_token", "not a token from a previous ListJobs response") from None
        rows = self.store.jobs(request.state if request.HasField("state") else None,
                               request.stage if request.HasField("stage") else None, offset, size + 1)
        more = len(rows) > size
        return pb.ListJobsResponse(jobs=[job_message(r) for r in rows[:size]],
                                   next_page_token=str(offset + size) if more else "")

    async def WatchJob(self, request: pb.WatchJobRequest, context) -> AsyncIterator[pb.JobEvent]:
        row = self._row(request.job_id)
        current = pb.JobEvent(job_id=row["job_id"], state=pb.StateChange(state=row["state"]))
        current.time.GetCurrentTime()
        yield current
        history = request.include_history or request.HasField("from_step")
        seen = 0
        for event_id, step, data in self.store.events(request.job_id):
            seen = event_id
            if history and (not request.HasField("from_step") or step >= request.from_step):
                yield pb.JobEvent.FromString(data)
        if row["state"] in TERMINAL:
            return
        while True:
            for event_id, _, data in self.store.events(request.job_id, seen):
                seen = event_id
                event = pb.JobEvent.FromString(data)
                yield event
                if event.WhichOneof("kind") == "state" and event.state.state in TERMINAL:
                    return
            await asyncio.sleep(POLL_SECONDS)

    def _row(self, job_id: str) -> dict:
        if not job_id:
            raise InvalidArgument("job_id", "required")
        row = self.store.get(job_id)
        if row is None:
            raise NotFound(f"no job {job_id!r}; ListJobs shows the known ones")
        return row

