"""The trainer service: jobs submitted, run, watched, cancelled, listed, persisted in SQLite and resumed
after the service is killed; bad submissions refused naming the field; one real GRPO job end to end."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from services.common.harness import ServerThread
from services.common.local import LocalService
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer.app import Config, TrainerSection, build

COUNTING = "tests.services.trainer.jobs_for_tests:counting_job"


@contextlib.contextmanager
def trainer(root: Path, job_function: str = COUNTING):
    config = Config(trainer=TrainerSection(jobs_root=str(root), job_function=job_function, stop_seconds=30))
    with ServerThread(build(config)) as server:
        server.run(server.server.wait_ready(60), timeout=70)
        with grpc.insecure_channel(server.target) as channel:
            yield trainer_pb2_grpc.TrainerStub(channel), server


def submit(stub, job_id: str | None = None, config: dict | None = None, **fields) -> pb.Job:
    struct = struct_pb2.Struct()
    struct.update(config if config is not None else {"grpo": {"steps": 5}, "eval": {"every": 2}})
    request = pb.SubmitJobRequest(stage=fields.pop("stage", pb.STAGE_GRPO), config=struct,
                                  datasets=fields.pop("datasets", [pb.DatasetRef(uri="synthetic")]),
                                  base_checkpoint=fields.pop("base_checkpoint", "teacher"), **fields)
    if job_id is not None:
        request.job_id = job_id
    return stub.SubmitJob(request, timeout=30)


def wait_for(stub, job_id: str, states, timeout: float = 60) -> pb.Job:
    deadline = time.monotonic() + timeout
    while (job := stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=10)).state not in states:
        assert time.monotonic() < deadline, f"{job_id} still {pb.JobState.Name(job.state)}"
        time.sleep(0.05)
    return job


def test_a_job_runs_to_success_and_its_watch_stream_tells_the_story(tmp_path):
    with trainer(tmp_path) as (stub, _):
        job = submit(stub, "count-1", labels={"who": "test"})
        assert job.state == pb.JOB_STATE_QUEUED and job.output_dir == str(tmp_path / "count-1")
        events = list(stub.WatchJob(pb.WatchJobRequest(job_id="count-1", include_history=True), timeout=60))
        job = stub.GetJob(pb.GetJobRequest(job_id="count-1"))
    assert events[0].state.previous == pb.JOB_STATE_UNSPECIFIED
    states = [e.state.state for e in events[1:] if e.WhichOneof("kind") == "state"]
    assert states == [pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING, pb.JOB_STATE_SUCCEEDED]
    assert [e.step.step for e in events if e.WhichOneof("kind") == "step"] == [1, 2, 3, 4, 5]
    assert [e.checkpoint.final for e in events if e.WhichOneof("kind") == "checkpoint"] == [False] * 4 + [True]
    assert (job.step, job.total_steps, job.weight_version, dict(job.labels)) == (5, 5, 5, {"who": "test"})
    assert job.metrics["reward_mean"] == 1.0 and job.HasField("finish_time")


def test_submitting_an_existing_id_returns_the_job_unchanged(tmp_path):
    with trainer(tmp_path) as (stub, _):
        first = submit(stub, "same")
        again = submit(stub, "same", config={"grpo": {"steps": 99}})
        assert again.job_id == first.job_id and again.config == first.config


@pytest.mark.parametrize("change, field", [
    ({"config": {"grpo": {"lr": -1}}}, "config.grpo.lr"),
    ({"config": {"grpo": {"no_such": 1}}}, "config.grpo.no_such"),
    ({"stage": pb.STAGE_UNSPECIFIED}, "stage"),
    ({"datasets": []}, "datasets"),
    ({"base_checkpoint": ""}, "base_checkpoint"),
    ({"job_id": "Bad ID!"}, "job_id"),
])
def test_a_bad_submission_is_refused_naming_the_field(tmp_path, change, field):
    with trainer(tmp_path) as (stub, _):
        with pytest.raises(grpc.RpcError) as error:
            submit(stub, **change)
        listed = stub.ListJobs(pb.ListJobsRequest()).jobs
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:")
    assert not listed  # nothing was recorded


def test_cancelling_a_running_job_stops_it_with_a_final_checkpoint(tmp_path):
    with trainer(tmp_path) as (stub, _):
        submit(stub, "long", config={"grpo": {"steps": 1000}, "eval": {"every": 2}})
        wait_for(stub, "long", {pb.JOB_STATE_RUNNING})
        time.sleep(0.2)
        stub.CancelJob(pb.CancelJobRequest(job_id="long", reason="enough"))
        job = wait_for(stub, "long", {pb.JOB_STATE_CANCELLED})
        events = list(stub.WatchJob(pb.WatchJobRequest(job_id="long", include_history=True), timeout=30))
    checkpoints = [e.checkpoint for e in events if e.WhichOneof("kind") == "checkpoint"]
    assert checkpoints[-1].final and checkpoints[-1].step == job.step < 1000
    assert any(e.state.state == pb.JOB_STATE_CANCELLING and e.state.message == "enough" for e in events
               if e.WhichOneof("kind") == "state")


def test_a_queued_job_is_cancelled_at_once_and_a_failure_is_recorded(tmp_path):
    with trainer(tmp_path) as (stub, _):
        submit(stub, "first", config={"grpo": {"steps": 1000}, "eval": {"every": 2}})
        submit(stub, "second")
        assert stub.CancelJob(pb.CancelJobRequest(job_id="second")).state == pb.JOB_STATE_CANCELLED
        stub.CancelJob(pb.CancelJobRequest(job_id="first"))
        wait_for(stub, "first", {pb.JOB_STATE_CANCELLED})
        submit(stub, "broken", labels={"fail_at": "2"})
        job = wait_for(stub, "broken", {pb.JOB_STATE_FAILED})
        assert job.error == "RuntimeError: failing at step 2 as asked"
        with pytest.raises(grpc.RpcError) as error:
            stub.GetJob(pb.GetJobRequest(job_id="nobody"))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_jobs_filters_and_pages_newest_first(tmp_path):
    with trainer(tmp_path) as (stub, _):
        for i in range(5):
            submit(stub, f"j{i}", config={"grpo": {"steps": 1}, "eval": {"every": 0}})
            time.sleep(0.01)
        wait_for(stub, "j4", {pb.JOB_STATE_SUCCEEDED})
        page = stub.ListJobs(pb.ListJobsRequest(page_size=2))
        rest = stub.ListJobs(pb.ListJobsRequest(page_size=10, page_token=page.next_page_token))
        sft = stub.ListJobs(pb.ListJobsRequest(stage=pb.STAGE_SFT))
        done = stub.ListJobs(pb.ListJobsRequest(state=pb.JOB_STATE_SUCCEEDED))
    assert [j.job_id for j in page.jobs] == ["j4", "j3"] and [j.job_id for j in rest.jobs] == ["j2", "j1", "j0"]
    assert rest.next_page_token == "" and not sft.jobs and len(done.jobs) == 5


@pytest.mark.timeout(180)
def test_a_killed_service_restarts_lists_the_job_and_resumes_it(tmp_path):
    args = ["--set", f"trainer.jobs_root={tmp_path / 'jobs'}", "--set", f"trainer.job_function={COUNTING}"]
    service = LocalService("trainer", args=args)
    service.start(tmp_path)
    service.wait_serving()
    try:
        with grpc.insecure_channel(service.target) as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            submit(stub, "survivor", config={"grpo": {"steps": 40}, "eval": {"every": 5}})
            deadline = time.monotonic() + 60
            while stub.GetJob(pb.GetJobRequest(job_id="survivor")).step < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        service.kill()  # SIGKILL: no drain, no final checkpoint
        service.start(tmp_path)
        service.wait_serving()
        with grpc.insecure_channel(service.target) as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            assert [j.job_id for j in stub.ListJobs(pb.ListJobsRequest()).jobs] == ["survivor"]
            job = wait_for(stub, "survivor", {pb.JOB_STATE_SUCCEEDED}, timeout=60)
            events = list(stub.WatchJob(pb.WatchJobRequest(job_id="survivor", include_history=True), timeout=30))
    finally:
        service.stop()
    logs = [e.log.message for e in events if e.WhichOneof("kind") == "log"]
    assert "resuming after a trainer restart" in logs
    assert any(m.startswith("resumed from step ") and int(m.rsplit(" ", 1)[1]) >= 3 for m in logs)
    assert job.step == 40


@pytest.mark.timeout(300)
def test_a_real_grpo_job_trains_and_checkpoints(tmp_path, bilingual_teacher_dir):
    config = {"grpo": {"steps": 2, "prompts_per_step": 2, "group_size": 4, "max_tokens": 8, "checkpoint_every": 1},
              "eval": {"problems": 0}, "data": {"n_train": 20},
              "reward": {"accuracy": 1.0, "format": 1.0, "language": 1.0}}
    with trainer(tmp_path, "services.trainer.jobs:run_job") as (stub, server):
        submit(stub, "grpo", config=config, base_checkpoint=str(bilingual_teacher_dir))
        job = wait_for(stub, "grpo", {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED}, timeout=240)
        import urllib.request

        text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.error
    assert job.step == 2 and job.weight_version == 2 and Path(job.last_checkpoint, "model.safetensors").is_file()
    assert (Path(job.output_dir) / "curves.png").is_file() and (Path(job.output_dir) / "metrics.jsonl").is_file()
    assert 'r1_trainer_step{job_id="grpo"} 2.0' in text and 'r1_trainer_jobs{state="SUCCEEDED"} 1.0' in text
