"""Policy losses against values worked out by hand, one test per variant, and the diagnostics."""

from __future__ import annotations

import math

import pytest
import torch

from r1.rl.losses import (clip_fraction, clipped_objective, dapo_loss, dr_grpo_loss, grpo_loss, kl_k3,
                          token_entropy)

LOG = math.log


def test_the_clipped_objective_takes_the_pessimistic_term():
    old = torch.zeros(4, 1)
    new = torch.tensor([[LOG(1.5)], [LOG(1.5)], [LOG(0.5)], [LOG(0.5)]])
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0])
    # ratio 1.5, A +1: min(1.5, 1.2) = 1.2; A -1: min(-1.5, -1.2) = -1.5;
    # ratio 0.5, A +1: min(0.5, 0.8) = 0.5; A -1: min(-0.5, -0.8) = -0.8
    got = clipped_objective(new, old, advantages, 0.2, 0.2)
    assert got.flatten().tolist() == pytest.approx([1.2, -1.5, 0.5, -0.8])
    # clip-higher (eps_high 0.28): ratio 1.5 with A +1 is capped at 1.28 instead
    assert float(clipped_objective(new[:1], old[:1], advantages[:1], 0.2, 0.28)) == pytest.approx(1.28)


def test_k3_is_nonnegative_and_matches_the_formula():
    logp = torch.tensor([[LOG(0.5), LOG(0.25)]])
    ref = torch.tensor([[LOG(0.25), LOG(0.25)]])
    # token 1: ref - logp = log 0.5 -> 0.5 + log 2 - 1 = 0.193147; token 2: 0
    assert kl_k3(logp, ref).tolist()[0] == pytest.approx([0.5 + LOG(2) - 1, 0.0])


@pytest.fixture
def batch():
    """Two completions of lengths 2 and 1 at ratio 1 (first inner update), advantages +1 and -1."""
    logprobs = torch.tensor([[LOG(0.5), LOG(0.5)], [LOG(0.5), 0.0]])
    ref = torch.tensor([[LOG(0.25), LOG(0.5)], [LOG(0.5), 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    return logprobs, logprobs.clone(), ref, torch.tensor([1.0, -1.0]), mask


def test_grpo_averages_tokens_per_sequence_then_sequences(batch):
    logprobs, old, ref, advantages, mask = batch
    k3 = 0.5 + LOG(2) - 1  # the first token's KL; the others are 0
    # sequence 1: tokens -1 + 0.1 x k3 and -1 -> mean -1 + 0.05 k3; sequence 2: +1; mean over the two
    expected = ((-1 + 0.05 * k3) + 1) / 2
    assert float(grpo_loss(logprobs, old, ref, advantages, mask, epsilon=0.2, beta=0.1)) == pytest.approx(expected, abs=1e-7)
    assert float(grpo_loss(logprobs, old, None, advantages, mask, beta=0.0)) == pytest.approx(0.0)


def test_dapo_averages_over_every_token_of_the_batch(batch):
    logprobs, old, _, advantages, mask = batch
    # three tokens: -1, -1, +1 -> -1/3 (GRPO's per-sequence mean would give 0)
    assert float(dapo_loss(logprobs, old, advantages, mask)) == pytest.approx(-1 / 3)


def test_dr_grpo_divides_by_the_generation_budget(batch):
    logprobs, old, _, advantages, mask = batch
    # token sum -1 over N x max_tokens = 2 x 8
    assert float(dr_grpo_loss(logprobs, old, advantages, mask, max_tokens=8)) == pytest.approx(-1 / 16)


def test_kl_needs_the_reference(batch):
    logprobs, old, _, advantages, mask = batch
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(logprobs, old, None, advantages, mask, beta=0.04)


def test_the_losses_have_the_policy_gradient_sign(batch):
    """Minimising moves probability toward the positive-advantage completion and away from the other."""
    logprobs, old, _, advantages, mask = batch
    logprobs.requires_grad_(True)
    dapo_loss(logprobs, old, advantages, mask).backward()
    assert (logprobs.grad[0] < 0).all() and logprobs.grad[1, 0] > 0 and logprobs.grad[1, 1] == 0


def test_clip_fraction_counts_the_tokens_without_gradient():
    old = torch.zeros(2, 2)
    new = torch.tensor([[LOG(1.5), 0.0], [LOG(0.5), LOG(0.5)]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # sequence 1 (A > 0): ratio 1.5 clipped, ratio 1 not; sequence 2 (A < 0): ratio 0.5 clipped; padding ignored
    assert clip_fraction(new, old, torch.tensor([1.0, -1.0]), mask, 0.2, 0.2) == pytest.approx(2 / 3)


def test_token_entropy_of_uniform_and_certain_distributions():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    assert token_entropy(logits, torch.tensor([[1.0, 0.0]])) == pytest.approx(math.log(4))
    assert token_entropy(logits, torch.tensor([[1.0, 1.0]])) == pytest.approx(math.log(4) / 2, abs=1e-6)
