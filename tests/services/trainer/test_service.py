"""The trainer service: jobs submitted, run, watched, cancelled, listed, persisted in SQLite and resumed
after a clean stop and after the service is killed; watched live, finished, from a step, by several
watchers; listed and paged; bad submissions refused naming the field; a full queue refused; one real GRPO
job end to end."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from services.common.harness import ServerThread
from services.common.local import LocalService
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer.app import Config, TrainerSection, build
from services.trainer.runner import RESUMING

COUNTING = "tests.services.trainer.jobs_for_tests:counting_job"
LONG = {"grpo": {"steps": 1000}, "eval": {"every": 2}}


@contextlib.contextmanager
def trainer(root: Path, job_function: str = COUNTING, **section):
    config = Config(trainer=TrainerSection(jobs_root=str(root), job_function=job_function, **section))
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


def wait_for(stub, job_id: str, states, step: int = 0, timeout: float = 60) -> pb.Job:
    deadline = time.monotonic() + timeout
    while (job := stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=10)).state not in states or job.step < step:
        assert time.monotonic() < deadline, f"{job_id} still {pb.JobState.Name(job.state)} at step {job.step}"
        time.sleep(0.02)
    return job


def watch(stub, job_id: str, **fields):
    return stub.WatchJob(pb.WatchJobRequest(job_id=job_id, **fields), timeout=60)


def kinds(events, kind: str) -> list:
    return [getattr(e, kind) for e in events if e.WhichOneof("kind") == kind]


def states(events) -> list[str]:
    return [pb.JobState.Name(s.state).removeprefix("JOB_STATE_") for s in kinds(events, "state")]


def without_time(event: pb.JobEvent) -> pb.JobEvent:
    copy = pb.JobEvent()
    copy.CopyFrom(event)
    copy.ClearField("time")
    return copy


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One service for the tests that need no service of their own (each uses its own job ids)."""
    root = tmp_path_factory.mktemp("jobs")
    with trainer(root) as (stub, server):
        yield stub, server, root


def test_a_job_runs_to_success_and_its_watch_stream_tells_the_story(shared):
    stub, _, root = shared
    job = submit(stub, "count-1", labels={"who": "test"})
    assert job.state == pb.JOB_STATE_QUEUED and job.output_dir == str(root / "count-1")
    assert job.HasField("create_time") and not job.HasField("start_time")
    events = list(watch(stub, "count-1", include_history=True))
    job = stub.GetJob(pb.GetJobRequest(job_id="count-1"))
    assert events[0].state.previous == pb.JOB_STATE_UNSPECIFIED and events[0].job_id == "count-1"
    assert states(events)[1:] == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [s.step for s in kinds(events, "step")] == [1, 2, 3, 4, 5]
    assert [c.final for c in kinds(events, "checkpoint")] == [False] * 4 + [True]
    assert (job.step, job.total_steps, job.weight_version, dict(job.labels)) == (5, 5, 5, {"who": "test"})
    assert job.metrics["reward_mean"] == 1.0 and job.last_checkpoint == str(root / "count-1" / "state.json")
    assert job.HasField("start_time") and job.HasField("finish_time") and job.config["grpo"]["steps"] == 5


def test_live_watchers_see_the_same_events_and_end_with_the_terminal_one(shared):
    stub, _, _ = shared
    submit(stub, "blocker", config=LONG)
    wait_for(stub, "blocker", {pb.JOB_STATE_RUNNING})
    submit(stub, "follow", config={"grpo": {"steps": 3}, "eval": {"every": 1}})
    live, replayed = watch(stub, "follow"), watch(stub, "follow", include_history=True)
    first = next(live)
    assert (first.state.state, first.state.previous) == (pb.JOB_STATE_QUEUED, pb.JOB_STATE_UNSPECIFIED)
    assert next(replayed).state.state == pb.JOB_STATE_QUEUED
    stub.CancelJob(pb.CancelJobRequest(job_id="blocker"))  # lets "follow" run
    live, replayed = list(live), list(replayed)  # both complete on their own
    assert states(live) == ["RUNNING", "SUCCEEDED"] and [s.step for s in kinds(live, "step")] == [1, 2, 3]
    assert states(replayed)[0] == "QUEUED" and kinds(replayed, "state")[0].message == "submitted"
    assert [without_time(e) for e in replayed[1:]] == [without_time(e) for e in live]
    assert all(e.time.seconds > 0 for e in live)


def test_watching_a_finished_job_replays_what_was_asked_and_ends(shared):
    stub, _, _ = shared
    submit(stub, "done", config={"grpo": {"steps": 4}, "eval": {"every": 0}})
    wait_for(stub, "done", {pb.JOB_STATE_SUCCEEDED})
    only_now = list(watch(stub, "done"))
    from_3 = list(watch(stub, "done", from_step=3))
    everything = list(watch(stub, "done", include_history=True))
    assert states(only_now) == ["SUCCEEDED"] and len(only_now) == 1
    assert states(from_3) == ["SUCCEEDED", "SUCCEEDED"]  # now, then the transition at step 4
    assert [s.step for s in kinds(from_3, "step")] == [3, 4] and [c.step for c in kinds(from_3, "checkpoint")] == [3, 4]
    assert states(everything) == ["SUCCEEDED", "QUEUED", "RUNNING", "SUCCEEDED"]
    with pytest.raises(grpc.RpcError) as error:
        list(watch(stub, "nobody"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        list(watch(stub, ""))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith("job_id:")


def test_submitting_an_existing_id_returns_the_job_unchanged(shared):
    stub, _, _ = shared
    first = submit(stub, "same")
    again = submit(stub, "same", config={"grpo": {"steps": 99}}, stage=pb.STAGE_UNSPECIFIED, datasets=[])
    assert again.job_id == first.job_id and again.config == first.config and again.create_time == first.create_time
    generated = submit(stub)
    assert generated.job_id.startswith("grpo-") and generated.job_id != submit(stub).job_id


@pytest.mark.parametrize("change, field", [
    ({"config": {"grpo": {"lr": -1}}}, "config.grpo.lr"),
    ({"config": {"grpo": {"no_such": 1}}}, "config.grpo.no_such"),
    ({"stage": pb.STAGE_UNSPECIFIED}, "stage"),
    ({"datasets": []}, "datasets"),
    ({"datasets": [pb.DatasetRef(uri="synthetic", weight=-1)]}, "datasets[0].weight"),
    ({"datasets": [pb.DatasetRef(uri="/no/such.jsonl")]}, "datasets.uri"),
    ({"base_checkpoint": ""}, "base_checkpoint"),
    ({"job_id": "Bad ID!"}, "job_id"),
])
def test_a_bad_submission_is_refused_naming_the_field(shared, change, field):
    stub, _, _ = shared
    with pytest.raises(grpc.RpcError) as error:
        submit(stub, **({"job_id": "refused"} | change))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:")
    with pytest.raises(grpc.RpcError) as error:
        stub.GetJob(pb.GetJobRequest(job_id="refused"))  # nothing was recorded
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_cancelling_a_running_job_stops_it_with_a_final_checkpoint(shared):
    stub, server, _ = shared
    submit(stub, "long", config=LONG)
    wait_for(stub, "long", {pb.JOB_STATE_RUNNING}, step=2)
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    assert 'r1_trainer_step{job_id="long"}' in text and 'r1_trainer_jobs{state="RUNNING"} 1.0' in text
    cancelling = stub.CancelJob(pb.CancelJobRequest(job_id="long", reason="enough"))
    assert cancelling.state in (pb.JOB_STATE_CANCELLING, pb.JOB_STATE_CANCELLED)
    events = list(watch(stub, "long", include_history=True))
    job = stub.GetJob(pb.GetJobRequest(job_id="long"))
    final = kinds(events, "checkpoint")[-1]
    assert job.state == pb.JOB_STATE_CANCELLED and final.final and final.step == job.step < 1000
    assert job.last_checkpoint == final.path and job.error == ""
    assert [(s, m.message) for s, m in zip(states(events), kinds(events, "state"))][-2:] == [
        ("CANCELLING", "enough"), ("CANCELLED", f"stopped at step {job.step} with a final checkpoint ({final.path})")]
    again = stub.CancelJob(pb.CancelJobRequest(job_id="long"))
    assert again == job  # idempotent
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    assert 'r1_trainer_step{job_id="long"}' not in text


def test_a_queued_job_is_cancelled_at_once_and_a_failure_is_recorded(shared):
    stub, _, _ = shared
    submit(stub, "first", config=LONG)
    submit(stub, "second")
    second = stub.CancelJob(pb.CancelJobRequest(job_id="second"))
    assert second.state == pb.JOB_STATE_CANCELLED and not second.HasField("start_time") and not second.last_checkpoint
    stub.CancelJob(pb.CancelJobRequest(job_id="first"))
    wait_for(stub, "first", {pb.JOB_STATE_CANCELLED})
    submit(stub, "broken", labels={"fail_at": "2"})
    job = wait_for(stub, "broken", {pb.JOB_STATE_FAILED})
    assert job.error == "RuntimeError: failing at step 2 as asked" and job.step == 1
    for rpc, request in ((stub.GetJob, pb.GetJobRequest(job_id="nobody")),
                         (stub.CancelJob, pb.CancelJobRequest(job_id="nobody"))):
        with pytest.raises(grpc.RpcError) as error:
            rpc(request)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_full_queue_is_refused_with_resource_exhausted(tmp_path):
    with trainer(tmp_path, max_queued_jobs=1) as (stub, _):
        submit(stub, "running", config=LONG)
        wait_for(stub, "running", {pb.JOB_STATE_RUNNING})
        submit(stub, "waiting")
        with pytest.raises(grpc.RpcError) as error:
            submit(stub, "one-too-many")
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert submit(stub, "waiting").state == pb.JOB_STATE_QUEUED  # an idempotent retry still answers
        stub.CancelJob(pb.CancelJobRequest(job_id="running"))


def test_list_jobs_filters_and_pages_newest_first(tmp_path):
    with trainer(tmp_path) as (stub, _):
        for i in range(5):
            submit(stub, f"j{i}", config={"grpo": {"steps": 1}, "eval": {"every": 0}})
        submit(stub, "sft-1", stage=pb.STAGE_SFT, config={})
        wait_for(stub, "sft-1", {pb.JOB_STATE_SUCCEEDED})
        page = stub.ListJobs(pb.ListJobsRequest(page_size=2, stage=pb.STAGE_GRPO))
        sft = stub.ListJobs(pb.ListJobsRequest(stage=pb.STAGE_SFT))
        done = stub.ListJobs(pb.ListJobsRequest(state=pb.JOB_STATE_SUCCEEDED, stage=pb.STAGE_GRPO))
        submit(stub, "later", config={"grpo": {"steps": 1}, "eval": {"every": 0}})  # pages do not shift
        rest = stub.ListJobs(pb.ListJobsRequest(page_size=10, page_token=page.next_page_token, stage=pb.STAGE_GRPO))
        everything = stub.ListJobs(pb.ListJobsRequest())
        with pytest.raises(grpc.RpcError) as error:
            stub.ListJobs(pb.ListJobsRequest(page_token=page.next_page_token))  # other filters than its page
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith("page_token:")
    assert [j.job_id for j in page.jobs] == ["j4", "j3"] and page.next_page_token
    assert [j.job_id for j in rest.jobs] == ["j2", "j1", "j0"] and rest.next_page_token == ""
    assert [j.job_id for j in sft.jobs] == ["sft-1"] and sft.jobs[0].stage == pb.STAGE_SFT
    assert {j.job_id for j in done.jobs} == {"j0", "j1", "j2", "j3", "j4"}
    assert [j.job_id for j in everything.jobs][:2] == ["later", "sft-1"] and len(everything.jobs) == 7


def test_a_stopped_service_checkpoints_its_job_and_the_next_one_resumes_it(tmp_path):
    with trainer(tmp_path) as (stub, _):
        submit(stub, "patient", config={"grpo": {"steps": 30}, "eval": {"every": 2}})
        wait_for(stub, "patient", {pb.JOB_STATE_RUNNING}, step=2)
    with trainer(tmp_path) as (stub, _):
        job = stub.GetJob(pb.GetJobRequest(job_id="patient"))
        assert job.state in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
        job = wait_for(stub, "patient", {pb.JOB_STATE_SUCCEEDED})
        events = list(watch(stub, "patient", include_history=True))
    stopped_at = int((tmp_path / "patient" / "resumed").read_text())
    assert 2 <= stopped_at < 30 and job.step == 30
    assert [c.final for c in kinds(events, "checkpoint") if c.step == stopped_at] == [False]
    assert states(events)[1:] == ["QUEUED", "RUNNING", "QUEUED", "RUNNING", "SUCCEEDED"]


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
            wait_for(stub, "survivor", {pb.JOB_STATE_RUNNING}, step=3)
        service.kill()  # SIGKILL: no drain, no final checkpoint
        service.start(tmp_path)
        service.wait_serving()
        with grpc.insecure_channel(service.target) as channel:
            stub = trainer_pb2_grpc.TrainerStub(channel)
            assert [j.job_id for j in stub.ListJobs(pb.ListJobsRequest()).jobs] == ["survivor"]
            job = wait_for(stub, "survivor", {pb.JOB_STATE_SUCCEEDED}, timeout=60)
            events = list(watch(stub, "survivor", include_history=True))
    finally:
        service.stop()
    logs = [e.message for e in kinds(events, "log")]
    resumed_at = int((tmp_path / "jobs" / "survivor" / "resumed").read_text())
    assert RESUMING in logs and f"resumed from step {resumed_at}" in logs and resumed_at >= 3
    assert states(events)[1:] == ["QUEUED", "RUNNING", "QUEUED", "RUNNING", "SUCCEEDED"]
    assert job.step == 40 and [s.step for s in kinds(events, "step")][-1] == 40


@pytest.mark.timeout(300)
def test_a_real_grpo_job_trains_and_checkpoints(tmp_path, bilingual_teacher_dir):
    config = {"grpo": {"steps": 2, "prompts_per_step": 2, "group_size": 4, "max_tokens": 8, "checkpoint_every": 1},
              "eval": {"problems": 3, "k": 2, "max_tokens": 8}, "data": {"n_train": 20},
              "reward": {"accuracy": 1.0, "format": 1.0, "language": 1.0}}
    with trainer(tmp_path, "services.trainer.jobs:run_job") as (stub, server):
        submit(stub, "grpo", config=config, base_checkpoint=str(bilingual_teacher_dir))
        job = wait_for(stub, "grpo", {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED}, timeout=240)
        events = list(watch(stub, "grpo", include_history=True))
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read().decode()
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.error
    assert job.step == 2 and job.weight_version == 2 and Path(job.last_checkpoint, "model.safetensors").is_file()
    assert (Path(job.output_dir) / "curves.png").is_file() and (Path(job.output_dir) / "metrics.jsonl").is_file()
    assert {"reward_mean", "accuracy", "kl", "loss"} <= set(job.metrics)
    assert [c.final for c in kinds(events, "checkpoint")] == [False, True]
    assert 'r1_trainer_jobs{state="SUCCEEDED"} 1.0' in text and 'job_id="grpo"' not in text  # finished: no series
    # its held-out evaluations stay, one series per evaluated weight version (before: 0, after: 2)
    for version in (0, 2):
        assert f'r1_eval_pass_at_1{{benchmark="synthetic",model="job:grpo",weight_version="{version}"}}' in text
