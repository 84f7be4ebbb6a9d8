"""Recipes and job configs: the R1-Zero recipe loads, and a bad field is refused with its dotted name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from r1.data.synthetic import generate, to_jsonl
from r1.errors import InvalidArgument
from r1.rl.recipe import ROOT, load_grpo_recipe, teacher_problems, training_problems
from services.trainer.jobs import DatasetSpec, JobSpec, validate_job

RECIPE = ROOT / "recipes" / "r1-zero-tiny.yaml"


def test_the_r1_zero_recipe_follows_the_r1_protocol_for_evaluation():
    recipe = load_grpo_recipe(RECIPE)
    assert (recipe.eval.k, recipe.eval.temperature, recipe.eval.top_p) == (8, 0.6, 0.95)
    assert recipe.grpo.max_minutes == 10 and recipe.reward.accuracy == recipe.reward.format == 1.0


def test_training_problems_are_fresh_prompts_never_seen_by_the_teacher():
    recipe = load_grpo_recipe(RECIPE)
    pretraining, heldout = teacher_problems(recipe.teacher_recipe)
    train = training_problems(recipe.data, pretraining + heldout)
    prompts = {p.prompt for p in train}
    assert len(train) == len(prompts) == recipe.data.n_train
    assert not prompts & {p.prompt for p in pretraining + heldout}
    assert {p.task for p in train} == set(recipe.data.tasks)


def test_a_problems_file_is_used_as_given_less_the_teachers_prompts(tmp_path):
    recipe = load_grpo_recipe(RECIPE)
    pretraining, heldout = teacher_problems(recipe.teacher_recipe)
    fresh = generate("word", 5, seed=123, difficulty=3)  # three-step problems: the teacher saw level 1 only
    to_jsonl([pretraining[0], *fresh, heldout[0]], tmp_path / "problems.jsonl")
    data = replace(recipe.data, problems_file=str(tmp_path / "problems.jsonl"))
    assert training_problems(data, pretraining + heldout) == fresh
    to_jsonl([pretraining[0], heldout[0]], tmp_path / "seen.jsonl")
    with pytest.raises(InvalidArgument) as error:
        training_problems(replace(data, problems_file=str(tmp_path / "seen.jsonl")), pretraining + heldout)
    assert error.value.field == "data.problems_file"


def test_too_few_unseen_prompts_is_an_error_naming_n_train():
    recipe = load_grpo_recipe(RECIPE)  # level-1 equations: 4 x 11 x 20 = 880 distinct prompts
    data = replace(recipe.data, tasks=("linear",), difficulty={"linear": (1, 1)}, n_train=1000)
    with pytest.raises(InvalidArgument) as error:
        training_problems(data, [])
    assert error.value.field == "data.n_train" and "lower data.n_train" in str(error.value)


@pytest.mark.parametrize("override, field", [
    ("grpo.lr=-1", "grpo.lr"), ("grpo.group_size=1", "grpo.group_size"), ("grpo.loss=ppo", "grpo.loss"),
    ("eval.top_p=0", "eval.top_p"), ("grpo.epsilon_high=0.1", "grpo.epsilon_high"), ("grpo.lrr=1", "grpo.lrr"),
])
def test_a_bad_recipe_field_is_named(override, field):
    with pytest.raises(InvalidArgument) as error:
        load_grpo_recipe(RECIPE, [override])
    assert error.value.field == field


def job(**change) -> JobSpec:
    fields = dict(job_id="j", stage="grpo", config={}, datasets=(DatasetSpec("synthetic"),), base_checkpoint="teacher",
                  output_dir="/tmp/unused")
    return JobSpec(**{**fields, **change})


@pytest.mark.parametrize("change, field", [
    ({"config": {"grpo": {"lr": 0}}}, "config.grpo.lr"),
    ({"config": {"grpo": {"bogus": 1}}}, "config.grpo.bogus"),
    ({"config": {"eval": {"k": "many"}}}, "config.eval.k"),
    ({"stage": "ppo"}, "stage"),
    ({"datasets": (DatasetSpec("/no/such.jsonl"),)}, "datasets.uri"),
    ({"base_checkpoint": "/no/such/dir"}, "base_checkpoint"),
])
def test_an_invalid_job_is_refused_naming_the_field(change, field):
    with pytest.raises(InvalidArgument) as error:
        validate_job(job(**change))
    assert error.value.field == field


def test_a_valid_job_passes():
    validate_job(job(config={"grpo": {"lr": 2e-4}, "eval": {"k": 4}}))
