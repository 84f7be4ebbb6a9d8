"""The wire and the trainer's records agree: configs, specs, jobs, timestamps, page tokens, checked fields."""

from __future__ import annotations

import pytest

from r1.errors import InvalidArgument
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.trainer import convert


def request(**fields) -> pb.SubmitJobRequest:
    values = dict(stage=pb.STAGE_GRPO, datasets=[pb.DatasetRef(uri="synthetic")], base_checkpoint="teacher")
    return pb.SubmitJobRequest(**(values | fields))


def test_a_config_comes_back_with_integral_numbers_as_ints():
    struct = convert.config_struct({"grpo": {"steps": 5, "lr": 1e-6, "beta": 0.0}, "stop": ["a"], "on": True})
    assert convert.config_dict(struct) == {"grpo": {"steps": 5, "lr": 1e-6, "beta": 0}, "stop": ["a"], "on": True}
    assert isinstance(convert.config_dict(struct)["grpo"]["steps"], int)


def test_a_submission_becomes_the_jobs_spec_with_the_documented_defaults():
    message = request(stage=pb.STAGE_SFT, config=convert.config_struct({"sft": {"max_steps": 3}}),
                      datasets=[pb.DatasetRef(uri="a.jsonl"), pb.DatasetRef(uri="org/set", split="test", name="main",
                                                                            weight=2.5)],
                      generation_target="g:1", verifier_target="v:2", labels={"who": "me"})
    spec = convert.spec_of("j", message, "/jobs/j")
    assert (spec.job_id, spec.stage, spec.config, spec.output_dir) == ("j", "sft", {"sft": {"max_steps": 3}}, "/jobs/j")
    assert [(d.uri, d.split, d.name, d.weight) for d in spec.datasets] == [
        ("a.jsonl", "train", None, 1.0), ("org/set", "test", "main", 2.5)]
    assert (spec.generation_target, spec.verifier_target, spec.labels) == ("g:1", "v:2", {"who": "me"})
    assert convert.spec_of("j", request(), "/j").config == {}


@pytest.mark.parametrize("change, field", [
    ({"stage": pb.STAGE_UNSPECIFIED}, "stage"),
    ({"stage": 42}, "stage"),
    ({"datasets": []}, "datasets"),
    ({"datasets": [pb.DatasetRef(uri="synthetic"), pb.DatasetRef()]}, "datasets[1].uri"),
    ({"datasets": [pb.DatasetRef(uri="synthetic", weight=0)]}, "datasets[0].weight"),
    ({"base_checkpoint": ""}, "base_checkpoint"),
    ({"job_id": "-starts-with-dash"}, "job_id"),
    ({"job_id": "x" * 64}, "job_id"),
    ({"job_id": "Upper"}, "job_id"),
])
def test_a_bad_submission_names_its_field(change, field):
    with pytest.raises(InvalidArgument) as error:
        convert.check_submit(request(**change))
    assert error.value.field == field


def test_good_job_ids_pass_and_generated_ones_are_valid():
    for job_id in ("a", "0-x_y", "r1-zero-7b", "x" * 63):
        convert.check_job_id(job_id)
    convert.check_job_id(convert.new_job_id(pb.STAGE_GRPO))
    assert convert.new_job_id(pb.STAGE_SFT).startswith("sft-")


def test_a_stored_row_reads_back_as_the_job_as_submitted():
    submitted = request(config=convert.config_struct({"grpo": {"steps": 2}}), labels={"k": "v"})
    row = {"job_id": "j", "stage": pb.STAGE_GRPO, "state": pb.JOB_STATE_RUNNING,
           "request": submitted.SerializeToString(), "output_dir": "/jobs/j", "step": 1, "total_steps": 2,
           "last_checkpoint": "/jobs/j/ckpt", "weight_version": 1, "error": "", "metrics": '{"loss": 0.5}',
           "create_time": 1700000000.25, "start_time": 1700000001.5, "finish_time": None}
    job = convert.job_to_proto(row)
    assert (job.job_id, job.stage, job.state, job.step, job.total_steps) == ("j", pb.STAGE_GRPO,
                                                                             pb.JOB_STATE_RUNNING, 1, 2)
    assert job.config == submitted.config and list(job.datasets) == list(submitted.datasets)
    assert dict(job.labels) == {"k": "v"} and dict(job.metrics) == {"loss": 0.5}
    assert job.create_time.seconds == 1700000000 and job.create_time.nanos == 250_000_000
    assert job.HasField("start_time") and not job.HasField("finish_time")
    assert convert.spec_of_row(row).config == {"grpo": {"steps": 2}}


def test_events_carry_their_kind_and_step():
    stored = convert.checkpoint_event("j", 4, "/c", 3, True)
    message = pb.JobEvent.FromString(stored.data)
    assert (stored.step, stored.kind) == (4, "checkpoint") and message.job_id == "j"
    assert (message.checkpoint.path, message.checkpoint.weight_version, message.checkpoint.final) == ("/c", 3, True)
    assert message.time.seconds > 0
    log = pb.JobEvent.FromString(convert.log_event("j", 0, "warning", "careful\n", "r1.trainer.grpo").data).log
    assert (log.level, log.message, log.logger) == (pb.LOG_LEVEL_WARNING, "careful", "r1.trainer.grpo")


def test_page_tokens_round_trip_and_are_tied_to_their_filters():
    row = {"create_time": 1700000000.123456789, "job_id": "j-9"}
    token = convert.page_token(row, pb.JOB_STATE_QUEUED, None)
    assert convert.read_page_token(token, pb.JOB_STATE_QUEUED, None) == (row["create_time"], "j-9")
    assert convert.read_page_token("", None, None) is None
    for bad, state in (("not-a-token", pb.JOB_STATE_QUEUED), (token, None)):
        with pytest.raises(InvalidArgument) as error:
            convert.read_page_token(bad, state, None)
        assert error.value.field == "page_token"


def test_list_filters_default_and_cap_the_page_size():
    assert convert.list_filters(pb.ListJobsRequest()) == (None, None, 50)
    assert convert.list_filters(pb.ListJobsRequest(state=pb.JOB_STATE_UNSPECIFIED, page_size=5000)) == (None, None,
                                                                                                        1000)
    assert convert.list_filters(pb.ListJobsRequest(state=pb.JOB_STATE_FAILED, stage=pb.STAGE_SFT, page_size=3)) == (
        pb.JOB_STATE_FAILED, pb.STAGE_SFT, 3)
    with pytest.raises(InvalidArgument) as error:
        convert.list_filters(pb.ListJobsRequest(state=77))
    assert error.value.field == "state"
