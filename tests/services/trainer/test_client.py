"""The blocking trainer client against a real service: every RPC, pages followed, errors as library errors."""

from __future__ import annotations

import pytest

from r1.errors import InvalidArgument, NotFound
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.trainer.client import TrainerClient, as_json
from tests.services.trainer.test_service import LONG, trainer


def test_the_client_submits_watches_lists_and_cancels(tmp_path):
    with trainer(tmp_path) as (_, server), TrainerClient(server.target) as client:
        job = client.submit_job("grpo", {"grpo": {"steps": 3}, "eval": {"every": 1}},
                                [{"uri": "synthetic", "weight": 2.0}], "teacher", job_id="c-1", labels={"a": "b"})
        assert (job.job_id, job.state, job.datasets[0].weight, dict(job.labels)) == ("c-1", pb.JOB_STATE_QUEUED, 2.0,
                                                                                     {"a": "b"})
        events = list(client.watch_job("c-1"))
        assert events[-1].state.state == pb.JOB_STATE_SUCCEEDED
        assert [e.step.step for e in events if e.WhichOneof("kind") == "step"] == [1, 2, 3]
        assert [e.step.step for e in client.watch_job("c-1", from_step=3) if e.WhichOneof("kind") == "step"] == [3]
        assert client.get_job("c-1").step == 3 and '"jobId": "c-1"' in as_json(client.get_job("c-1"))

        client.submit_job("sft", {}, ["synthetic"], "teacher", job_id="c-2")
        client.submit_job(pb.STAGE_GRPO, LONG, [pb.DatasetRef(uri="synthetic")], "teacher", job_id="c-3")
        assert client.cancel_job("c-3", reason="later").state in (pb.JOB_STATE_CANCELLED, pb.JOB_STATE_CANCELLING)
        assert [j.job_id for j in client.list_jobs(page_size=1)] == ["c-3", "c-2", "c-1"]
        assert [j.job_id for j in client.list_jobs(stage="grpo")] == ["c-3", "c-1"]
        assert [j.job_id for j in client.list_jobs(state="SUCCEEDED", stage=pb.STAGE_GRPO)] == ["c-1"]


def test_server_errors_arrive_as_library_errors_naming_the_field(tmp_path):
    with trainer(tmp_path) as (_, server), TrainerClient(server.target) as client:
        with pytest.raises(InvalidArgument) as error:
            client.submit("grpo", {"grpo": {"lr": 0}}, ["synthetic"], "teacher")
        assert error.value.field == "config.grpo.lr"
        with pytest.raises(InvalidArgument) as error:
            client.submit("rl", {}, ["synthetic"], "teacher")
        assert error.value.field == "stage"
        with pytest.raises(NotFound):
            client.get("nobody")
        with pytest.raises(NotFound):
            list(client.watch("nobody"))
