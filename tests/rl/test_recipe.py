"""Recipes and job configs: the R1-Zero recipe loads, and a bad field is refused with its dotted name."""

from __future__ import annotations

import pytest

from r1.errors import InvalidArgument
from r1.rl.recipe import ROOT, heldout_problems, load_grpo_recipe, training_problems
from services.trainer.jobs import DatasetSpec, JobSpec, validate_job

RECIPE = ROOT / "recipes" / "r1-zero-tiny.yaml"
R1_ZERO_RECIPES = pytest.mark.parametrize("path", [RECIPE, ROOT / "recipes" / "r1-zero-word.yaml"], ids=lambda p: p.stem)


@R1_ZERO_RECIPES
def test_the_r1_zero_recipes_follow_the_r1_protocol_for_evaluation(path):
    recipe = load_grpo_recipe(path)
    assert (recipe.eval.k, recipe.eval.temperature, recipe.eval.top_p) == (8, 0.6, 0.95)
    assert recipe.grpo.max_minutes == 10 and recipe.reward.accuracy == recipe.reward.format == 1.0


@R1_ZERO_RECIPES
def test_training_problems_are_fresh_and_never_a_heldout_prompt(path):
    recipe = load_grpo_recipe(path)
    heldout = heldout_problems(recipe.teacher_recipe)
    train = training_problems(recipe.data, heldout)
    assert len(train) > 3000 and not {p.prompt for p in train} & {p.prompt for p in heldout}


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
