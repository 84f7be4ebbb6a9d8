"""A blocking client of the trainer service, for `r1 jobs` and scripts: plain dicts in, Job / JobEvent
messages out, server errors raised as the library's errors (services/common/errors.py) with their message."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
from google.protobuf import struct_pb2

from services.common.retry import client_error
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc

def as_json(message, indent: int | None = 2) -> str:
    """A Job or JobEvent as JSON (proto3 JSON mapping), for `r1 jobs` output."""
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(message, indent=indent)


STAGES = {"grpo": pb.STAGE_GRPO, "sft": pb.STAGE_SFT}


class TrainerClient:
    """``with TrainerClient("host:50053") as client: job = client.submit("grpo", config, ["synthetic"], "teacher")``"""

    def __init__(self, target: str, *, token: str = "", timeout: float | None = 30.0):
        self.target = target
        self._channel = grpc.insecure_channel(target)
        self._stub = trainer_pb2_grpc.TrainerStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout

    def submit(self, stage: str, config: dict, datasets: Sequence[str], base_checkpoint: str, *,
               generation_target: str = "", verifier_target: str = "", job_id: str | None = None,
               labels: dict[str, str] | None = None) -> pb.Job:
        struct = struct_pb2.Struct()
        struct.update(config)
        request = pb.SubmitJobRequest(stage=STAGES.get(stage, pb.STAGE_UNSPECIFIED), config=struct,
                                      datasets=[pb.DatasetRef(uri=uri) for uri in datasets],
                                      base_checkpoint=base_checkpoint, generation_target=generation_target,
                                      verifier_target=verifier_target, labels=labels or {})
        if job_id is not None:
            request.job_id = job_id
        return self._call(self._stub.SubmitJob, request)

    def get(self, job_id: str) -> pb.Job:
        return self._call(self._stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def cancel(self, job_id: str, reason: str = "") -> pb.Job:
        return self._call(self._stub.CancelJob, pb.CancelJobRequest(job_id=job_id, reason=reason))

    def list(self, state: int | None = None, page_size: int = 50) -> Iterator[pb.Job]:
        token = ""
        while True:
            request = pb.ListJobsRequest(page_size=page_size, page_token=token)
            if state is not None:
                request.state = state
            page = self._call(self._stub.ListJobs, request)
            yield from page.jobs
            if not page.next_page_token:
                return
            token = page.next_page_token

    def watch(self, job_id: str, include_history: bool = True) -> Iterator[pb.JobEvent]:
        try:
            yield from self._stub.WatchJob(pb.WatchJobRequest(job_id=job_id, include_history=include_history),
                                           metadata=self._metadata)
        except grpc.RpcError as e:
            raise client_error(e, "trainer", self.target) from None

    def _call(self, rpc, request):
        try:
            return rpc(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise client_error(e, "trainer", self.target) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> TrainerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

