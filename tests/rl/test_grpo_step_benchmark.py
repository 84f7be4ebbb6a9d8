"""The GRPO step benchmark's pieces on a tiny Qwen2 (`benchmarks/grpo_step.py`): on a fixed batch TRL's
GRPOTrainer.compute_loss and ours agree (grpo with a KL term, dapo, dr_grpo), and so do the advantages, the
pi_old log-probs and the gradients; both sides' training steps run and report their phases and tokens. The
timings are the benchmark's to print, never asserted here."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.paths import ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("grpo_step_benchmark", ROOT / "benchmarks" / "grpo_step.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(autouse=True)
def quiet_trl(monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")  # the loss check hands TRL its batch via rollout_func


@pytest.fixture(scope="module")
def model_dir(bench, tmp_path_factory):
    return bench.tiny_qwen2(tmp_path_factory.mktemp("qwen2"), hidden=64, layers=2)


@pytest.fixture(scope="module")
def problems(bench):
    return bench.training_problems(16)


@pytest.mark.parametrize("loss", ["grpo", "dapo", "dr_grpo"])
def test_trl_and_our_losses_agree_on_a_fixed_batch(bench, model_dir, problems, loss):
    row = bench.loss_agreement(model_dir, problems[:2], group=4, tokens=16, loss=loss)
    assert row["reward_std"] > 0  # the groups' rewards differ, so the advantages are not all zero
    assert row["clip_fraction"] > 0 and row["ratio_spread"] > 0.3  # pi / pi_old is off 1 and the clip bites
    assert row["advantage_diff"] < 1e-6
    assert row["old_logprob_diff"] < 1e-5
    if loss == "grpo":
        assert row["ref_logprob_diff"] < 1e-5
    assert abs(row["loss_ours"]) > 1e-3 and row["loss_diff"] < 1e-5
    assert row["grad_norm"] > 1e-2 and row["grad_diff"] < 1e-5


def test_trls_default_kl_weighting_is_not_ours(bench, model_dir, problems):
    """Why the benchmark sets use_bias_correction_kl=False: TRL's default multiplies the KL term by pi / pi_old,
    which moves the loss and the gradient away from DeepSeekMath's k3 that ours computes."""
    row = bench.loss_agreement(model_dir, problems[:2], group=4, tokens=16, loss="grpo", weighted_kl=True)
    assert row["loss_diff"] > 1e-6 and row["grad_diff"] > 1e-4


def test_both_sides_run_their_steps_and_report_them(bench, model_dir, problems):
    setup = bench.Setup(prompts=2, group=4, tokens=8, steps=2)
    for side in (bench.run_ours(model_dir, problems, setup), bench.run_trl(model_dir, problems, setup)):
        assert len(side.seconds) == 1  # two steps, the first one the warm-up
        assert {"generation", "verify", "train"} <= set(side.phases)
        assert all(len(values) == 1 and values[0] >= 0 for values in side.phases.values())
        assert 0 < side.tokens[0] <= setup.prompts * setup.group * setup.tokens
