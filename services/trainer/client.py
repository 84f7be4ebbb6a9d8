"""A blocking client of the trainer service, for `r1 jobs` and scripts: plain dicts in, Job / JobEvent
messages out, server errors raised as the library's errors (services/common/errors.py) with their message,
so a bad config field arrives as `InvalidArgument` with its `field` (e.g. "config.grpo.lr").

Choices:
- A submission refused for a full queue (RESOURCE_EXHAUSTED; nothing was recorded) is retried with the
  shared backoff (services/common/retry.py) for up to `retry_seconds`, like every client here; other
  failures raise at once.
- `watch_job` replays the job's history by default (the proto's default is live events only), since a
  script that watches a job it just submitted wants every step; it ends after the terminal event.
- `list_jobs` follows the page tokens and yields every job, newest first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grpc

from services.common.retry import call_with_retry, client_error
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer.convert import config_struct

STAGES = {"grpo": pb.STAGE_GRPO, "sft": pb.STAGE_SFT}
Dataset = str | Mapping[str, Any] | pb.DatasetRef


def as_json(message, indent: int | None = 2) -> str:
    """A Job or JobEvent as JSON (proto3 JSON mapping), for `r1 jobs` output."""
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(message, indent=indent)


class TrainerClient:
    """``with TrainerClient("host:50053") as client: job = client.submit_job("grpo", config, ["synthetic"], "teacher")``

    token: bearer token, if the server wants one; root_certificates: PEM CA to use TLS (None: plaintext);
    timeout: seconds per unary call (None: no deadline; WatchJob never has one); retry_seconds: how long to
    keep retrying a full queue.
    """

    def __init__(self, target: str, *, token: str = "", root_certificates: bytes | None = None,
                 timeout: float | None = 30.0, retry_seconds: float = 60.0):
        self.target = target
        self._channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
                         if root_certificates is not None else grpc.insecure_channel(target))
        self._stub = trainer_pb2_grpc.TrainerStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    def submit_job(self, stage: str | int, config: Mapping[str, Any] | None, datasets: Sequence[Dataset],
                   base_checkpoint: str, *, generation_target: str = "", verifier_target: str = "",
                   job_id: str | None = None, labels: Mapping[str, str] | None = None) -> pb.Job:
        """Queue a job (or get back the existing one with this job_id). stage: "grpo", "sft" or a Stage;
        datasets: uris, DatasetRef messages or mappings of DatasetRef's fields (uri, split, name, weight)."""
        request = pb.SubmitJobRequest(stage=STAGES.get(stage, pb.STAGE_UNSPECIFIED) if isinstance(stage, str)
                                      else stage, datasets=[_dataset(d) for d in datasets],
                                      base_checkpoint=base_checkpoint, generation_target=generation_target,
                                      verifier_target=verifier_target, labels=dict(labels or {}))
        if config is not None:
            request.config.CopyFrom(config_struct(dict(config)))
        if job_id is not None:
            request.job_id = job_id
        return self._call(self._stub.SubmitJob, request)

    def get_job(self, job_id: str) -> pb.Job:
        return self._call(self._stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def cancel_job(self, job_id: str, reason: str | None = None) -> pb.Job:
        request = pb.CancelJobRequest(job_id=job_id)
        if reason is not None:
            request.reason = reason
        return self._call(self._stub.CancelJob, request)

    def list_jobs(self, state: str | int | None = None, stage: str | int | None = None,
                  page_size: int = 0) -> Iterator[pb.Job]:
        """Every job (newest first), optionally only one state ("RUNNING" or JOB_STATE_RUNNING) / stage."""
        request = pb.ListJobsRequest(page_size=page_size)
        if state is not None:
            request.state = (pb.JobState.Value(f"JOB_STATE_{state.upper().removeprefix('JOB_STATE_')}")
                             if isinstance(state, str) else state)
        if stage is not None:
            request.stage = STAGES[stage] if isinstance(stage, str) else stage
        while True:
            page = self._call(self._stub.ListJobs, request)
            yield from page.jobs
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def watch_job(self, job_id: str, include_history: bool = True,
                  from_step: int | None = None) -> Iterator[pb.JobEvent]:
        """The job's events: its state now, then its history (unless include_history=False; from_step: only
        from that step on), then live ones, up to and including the terminal StateChange."""
        request = pb.WatchJobRequest(job_id=job_id, include_history=include_history)
        if from_step is not None:
            request.from_step = from_step
        try:
            yield from self._stub.WatchJob(request, metadata=self._metadata)
        except grpc.RpcError as e:
            raise client_error(e, "trainer", self.target) from None

    # The short names `r1 jobs` (r1/cli.py) uses.
    submit, get, cancel, list, watch = submit_job, get_job, cancel_job, list_jobs, watch_job

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> TrainerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, rpc, request):
        return call_with_retry(lambda: rpc(request, timeout=self.timeout, metadata=self._metadata),
                               self.retry_seconds, "trainer", self.target)


def _dataset(dataset: Dataset) -> pb.DatasetRef:
    if isinstance(dataset, pb.DatasetRef):
        return dataset
    if isinstance(dataset, str):
        return pb.DatasetRef(uri=dataset)
    return pb.DatasetRef(**dict(dataset))
