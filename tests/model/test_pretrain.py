"""Pretraining: a miniature recipe runs end to end into a loadable checkpoint and is reused by content hash;
the real tiny-teacher recipes (slow) land in the accuracy band the RL stages need."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1.config import from_dict
from r1.errors import InvalidArgument
from r1.model.pretrain import (PretrainRecipe, TrainSection, batch, common_prefix, content_hash, learning_rate,
                               length_grouped_batches, load_recipe, load_teacher, pretrain)
from tests.paths import ROOT

MINI = {"data": {"n_train": 200, "n_heldout": 10, "difficulty": {"arithmetic": [1, 1]}, "tasks": ["arithmetic"]},
        "train": {"steps": 6, "batch_size": 8}, "eval": {"max_new_tokens": 24}}


@pytest.fixture(scope="module")
def mini_teacher(tmp_path_factory):
    recipe = from_dict(PretrainRecipe, MINI)
    return recipe, pretrain(recipe, output=tmp_path_factory.mktemp("teacher"), progress=False)


def test_a_miniature_recipe_produces_a_checkpoint_transformers_loads(mini_teacher, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, directory = mini_teacher
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "loss.png",
                 "metrics.json"):
        assert (directory / name).is_file(), name
    metrics = json.loads((directory / "metrics.json").read_text())
    assert metrics["steps"] == 6 and 0 <= metrics["heldout_accuracy"] <= 1
    assert set(metrics["heldout_accuracy_by_task"]) == {"arithmetic"}
    assert 0 <= metrics["mtp_next_next_token_accuracy"] <= 1
    model, tokenizer = load_teacher(directory)
    theirs = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    their_tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    ids = torch.tensor([their_tokenizer("Compute 2 + 3.")["input_ids"]])
    assert ids.tolist()[0] == tokenizer("Compute 2 + 3.")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, theirs(ids).logits, atol=1e-4)


def test_the_same_recipe_and_code_reuse_the_teacher(mini_teacher, tmp_path, monkeypatch):
    recipe, directory = mini_teacher
    monkeypatch.setenv("R1_CACHE_DIR", str(tmp_path))
    cached = tmp_path / "teachers" / content_hash(recipe)
    cached.mkdir(parents=True)
    (cached / "metrics.json").write_text("{}")
    assert pretrain(recipe, progress=False) == cached  # found by hash: not retrained
    other = from_dict(PretrainRecipe, {**MINI, "train": {"steps": 7, "batch_size": 8}})
    assert content_hash(other) != content_hash(recipe)


def test_batches_mask_the_prompt_and_the_padding():
    examples = [([0, 7, 10, 11, 12, 1], 3), ([0, 7, 20, 1], 2)]
    ids, labels = batch(examples, pad_id=2)
    assert ids.tolist() == [[0, 7, 10, 11, 12, 1], [0, 7, 20, 1, 2, 2]]
    assert labels.tolist() == [[-100, -100, -100, 11, 12, 1], [-100, -100, 20, 1, -100, -100]]
    assert common_prefix(examples) == [0]  # one short of the shortest prompt
    ids, labels = batch(examples, pad_id=2, skip=1)
    assert ids.tolist() == [[7, 10, 11, 12, 1], [7, 20, 1, 2, 2]]
    assert labels.tolist() == [[-100, -100, 11, 12, 1], [-100, 20, 1, -100, -100]]


def test_length_grouped_batches_pad_little_and_draw_every_example():
    import random

    examples = [(list(range(n)), 1) for n in random.Random(0).choices(range(5, 80), k=400)]
    batches = length_grouped_batches(examples, 8, random.Random(1))
    drawn = [next(batches) for _ in range(400)]
    assert all(len(b) == 8 for b in drawn)
    padding = sum(max(len(e[0]) for e in b) * 8 - sum(len(e[0]) for e in b) for b in drawn)
    assert padding / sum(len(e[0]) for b in drawn for e in b) < 0.1  # random batches: ~0.6
    seen = {id(e) for b in drawn for e in b}
    assert len(seen) == len(examples)  # 3,200 draws over 400 examples (25 groups of 128) reach them all


def test_learning_rate_warms_up_then_decays_to_the_floor():
    config = TrainSection(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(0, config) == pytest.approx(0.1)
    assert learning_rate(9, config) == pytest.approx(1.0)
    assert learning_rate(55, config) == pytest.approx(0.55)
    assert learning_rate(100, config) == pytest.approx(0.1)
    assert learning_rate(55, config, time_spent=1.0) == pytest.approx(0.1)  # out of time: fully decayed
    behind = 0.1 + 0.9 * 0.5 * (1 + math.cos(0.6 * math.pi))  # 60% of the time for 55% of the steps: time leads
    assert learning_rate(55, config, time_spent=0.6) == pytest.approx(behind)
    assert learning_rate(55, config, time_spent=0.2) == pytest.approx(0.55)  # on pace: the steps alone
    assert learning_rate(55, config, time_spent=0.54) == pytest.approx(0.55)  # on pace, the clock further along
    assert learning_rate(0, TrainSection(steps=10, lr=1.0, warmup_steps=0, min_lr_ratio=0.1), time_spent=0.01) == 1.0


def test_bad_recipes_name_their_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stepz: 3\n")
    with pytest.raises(InvalidArgument, match="train.stepz"):
        load_recipe(bad)
    with pytest.raises(InvalidArgument, match="data.tasks"):
        pretrain(from_dict(PretrainRecipe, {"data": {"tasks": ["poetry"]}}), output=tmp_path / "x")


@pytest.mark.slow
@pytest.mark.timeout(900)  # trains the teacher (~9.5 and ~4 min) unless the cache holds it
@pytest.mark.parametrize("name", ["tiny-teacher.yaml", "tiny-teacher-word.yaml"])
def test_the_tiny_teacher_recipes_reach_the_accuracy_band_rl_needs(name):
    recipe = load_recipe(ROOT / "recipes" / name)
    directory = pretrain(recipe, progress=False)
    metrics = json.loads((directory / "metrics.json").read_text())
    assert 0.2 <= metrics["heldout_accuracy"] <= 0.7, metrics["heldout_accuracy_by_task"]
    assert metrics["train_seconds"] <= 10 * 60
    if name == "tiny-teacher-word.yaml":  # a step budget: the same model on every machine
        assert metrics["steps"] == recipe.train.steps
