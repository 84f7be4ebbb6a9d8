"""Between the wire (`r1.trainer.v1`) and the trainer's records: requests, stored rows, jobs, events, tokens.

The servicer checks a SubmitJobRequest here (`check_submit`) and turns it into the library-side `JobSpec`
(`spec_of`); the runner builds its JobEvents here; stored rows become `Job` messages here.

Choices:
- The submission is stored as the serialized SubmitJobRequest, so a job reads back exactly as submitted
  (config, datasets, labels) and a restarted trainer rebuilds the same `JobSpec` from it.
- Struct numbers are all doubles; the job config gets integral ones back as ints (`5.0` -> `5`), since the
  recipes' int fields refuse floats and their float fields take ints.
- Unset optional DatasetRef fields take the documented defaults here (split "train", weight 1.0).
- Page tokens are opaque keyset cursors (the last job's create_time and id, with the request's filters), so
  paging is stable while jobs are submitted; a token used with other filters is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from r1.errors import InvalidArgument
from services.common.validate import require_range
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.trainer.jobs import STAGES, DatasetSpec, JobSpec
from services.trainer.store import Event

STAGE_NAMES = {pb.STAGE_GRPO: "grpo", pb.STAGE_SFT: "sft"}
assert set(STAGE_NAMES.values()) == set(STAGES), "every stage of services.trainer.jobs has a wire value"
LEVELS = {"debug": pb.LOG_LEVEL_DEBUG, "info": pb.LOG_LEVEL_INFO, "warning": pb.LOG_LEVEL_WARNING,
          "error": pb.LOG_LEVEL_ERROR}
JOB_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


# ------------------------------------------------------------------------------------------- submissions


def check_job_id(job_id: str, path: str = "job_id") -> None:
    if not JOB_ID.fullmatch(job_id):
        raise InvalidArgument(path, f"{job_id!r}: must be 1-63 characters of [a-z0-9-_], starting with a letter "
                                    "or digit")


def check_submit(request: pb.SubmitJobRequest) -> None:
    """Everything about a submission the wire alone can tell (the config is the job's to check)."""
    if request.stage not in STAGE_NAMES:
        got = pb.Stage.Name(request.stage) if request.stage in pb.Stage.values() else request.stage
        raise InvalidArgument("stage", f"must be one of {', '.join(pb.Stage.Name(s) for s in STAGE_NAMES)}, "
                                       f"got {got}")
    if not request.datasets:
        raise InvalidArgument("datasets", "at least one dataset is required (uri \"synthetic\": the recipe's "
                                          "generated problems)")
    for i, dataset in enumerate(request.datasets):
        if not dataset.uri:
            raise InvalidArgument(f"datasets[{i}].uri", "required: a local path or a hub dataset id")
        if dataset.HasField("weight"):
            require_range(dataset.weight, f"datasets[{i}].weight", low=0, low_open=True)
    if not request.base_checkpoint:
        raise InvalidArgument("base_checkpoint", "required: a checkpoint directory, a hub model id, or \"teacher\"")
    if request.HasField("job_id"):
        check_job_id(request.job_id)


def new_job_id(stage: int) -> str:
    return f"{STAGE_NAMES.get(stage, 'job')}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def config_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python, integral numbers as ints."""
    return integral(MessageToDict(struct))


def config_struct(config: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(config)
    return struct


def integral(value: Any) -> Any:
    """Struct numbers are all doubles: 5.0 back to 5 (a float field still takes an int), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def spec_of(job_id: str, request: pb.SubmitJobRequest, output_dir: str) -> JobSpec:
    """The library-side job of a submission."""
    return JobSpec(
        job_id=job_id, stage=STAGE_NAMES.get(request.stage, ""),
        config=config_dict(request.config) if request.HasField("config") else {},
        datasets=tuple(DatasetSpec(d.uri, d.split or "train", d.name if d.HasField("name") else None,
                                   d.weight if d.HasField("weight") else 1.0) for d in request.datasets),
        base_checkpoint=request.base_checkpoint, output_dir=output_dir,
        generation_target=request.generation_target, verifier_target=request.verifier_target,
        labels=dict(request.labels))


def spec_of_row(row: dict) -> JobSpec:
    return spec_of(row["job_id"], pb.SubmitJobRequest.FromString(row["request"]), row["output_dir"])


# ------------------------------------------------------------------------------------------------- jobs


def timestamp(seconds: float) -> Timestamp:
    whole = math.floor(seconds)
    nanos = min(round((seconds - whole) * 1e9), 999_999_999)  # whole seconds apart: no float error on them
    return Timestamp(seconds=whole, nanos=nanos)


def job_to_proto(row: dict) -> pb.Job:
    """The Job message of a stored row."""
    request = pb.SubmitJobRequest.FromString(row["request"])
    job = pb.Job(job_id=row["job_id"], stage=row["stage"], state=row["state"], datasets=request.datasets,
                 base_checkpoint=request.base_checkpoint, generation_target=request.generation_target,
                 verifier_target=request.verifier_target, labels=request.labels, step=row["step"],
                 total_steps=row["total_steps"], last_checkpoint=row["last_checkpoint"],
                 weight_version=row["weight_version"], error=row["error"], output_dir=row["output_dir"],
                 metrics=json.loads(row["metrics"]))
    if request.HasField("config"):
        job.config.CopyFrom(request.config)
    for name in ("create_time", "start_time", "finish_time"):
        if row[name] is not None:
            getattr(job, name).CopyFrom(timestamp(row[name]))
    return job


# ----------------------------------------------------------------------------------------------- events


def event(job_id: str, at_step: int, **kind) -> Event:
    """A JobEvent stamped now, ready to store, emitted at the job's step `at_step`:
    event(job_id, 3, state=pb.StateChange(...))."""
    (name,) = kind
    message = pb.JobEvent(job_id=job_id, **kind)
    message.time.GetCurrentTime()
    return Event(at_step, name, message.SerializeToString())


def state_event(job_id: str, step: int, state: int, previous: int, message: str = "") -> Event:
    return event(job_id, step, state=pb.StateChange(state=state, previous=previous, message=message))


def log_event(job_id: str, step: int, level: str, message: str, logger: str) -> Event:
    line = pb.LogLine(level=LEVELS.get(level, pb.LOG_LEVEL_INFO), message=message.rstrip("\n"), logger=logger)
    return event(job_id, step, log=line)


def step_event(job_id: str, step: int, values: dict[str, float]) -> Event:
    return event(job_id, step, step=pb.StepMetrics(step=step, values=values))


def checkpoint_event(job_id: str, step: int, path: str, weight_version: int, final: bool) -> Event:
    return event(job_id, step, checkpoint=pb.CheckpointSaved(step=step, path=path, weight_version=weight_version,
                                                             final=final))


def current_state(row: dict) -> pb.JobEvent:
    """The first event of every WatchJob stream: the job's state now, previous UNSPECIFIED."""
    message = pb.JobEvent(job_id=row["job_id"], state=pb.StateChange(state=row["state"], message=row["error"]))
    message.time.GetCurrentTime()
    return message


# ------------------------------------------------------------------------------------------------ lists


def list_filters(request: pb.ListJobsRequest) -> tuple[int | None, int | None, int]:
    """(state or None, stage or None, page size) of a ListJobs request."""
    state = request.state if request.HasField("state") and request.state else None
    stage = request.stage if request.HasField("stage") and request.stage else None
    if state is not None and state not in pb.JobState.values():
        raise InvalidArgument("state", f"unknown job state {state}")
    if stage is not None and stage not in pb.Stage.values():
        raise InvalidArgument("stage", f"unknown stage {stage}")
    return state, stage, min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_token(row: dict, state: int | None, stage: int | None) -> str:
    raw = json.dumps([row["create_time"], row["job_id"], state or 0, stage or 0]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_page_token(token: str, state: int | None, stage: int | None) -> tuple[float, str] | None:
    """The (create_time, job_id) a page starts after; None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        create_time, job_id, token_state, token_stage = json.loads(raw)
        key = (float(create_time), str(job_id))
    except (ValueError, TypeError):
        raise InvalidArgument("page_token", "not a next_page_token of this server's ListJobs") from None
    if (token_state, token_stage) != (state or 0, stage or 0):
        raise InvalidArgument("page_token", "was issued for other state / stage filters; repeat them, or start "
                                            "again without a token")
    return key
