"""Group advantages and reward shaping against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from r1.rl.advantages import centred_advantages, grpo_advantages, overlong_penalty, zero_variance_groups


def test_grpo_advantages_normalise_each_group_by_its_sample_std():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.5])  # groups of 4
    # group 1: mean 0.75, sample std sqrt((3 x 0.0625 + 0.5625) / 3) = 0.5
    # group 2: mean 0.5, sample std sqrt((0.25 + 0 + 0.25 + 0) / 3) = 0.408248
    got = grpo_advantages(rewards, 4, eps=0.0)
    s2 = math.sqrt(0.5 / 3)
    assert got.tolist() == pytest.approx([0.5, -1.5, 0.5, 0.5, -0.5 / s2, 0.0, 0.5 / s2, 0.0])


def test_a_group_of_equal_rewards_has_zero_advantage_and_is_flagged():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert grpo_advantages(rewards, 2).tolist() == pytest.approx([0.0, 0.0, -0.7070, 0.7070, 0.0, 0.0], abs=1e-4)
    assert zero_variance_groups(rewards, 2).tolist() == [True, False, True]


def test_dr_grpo_advantages_are_only_centred():
    assert centred_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4).tolist() == [0.75, -0.25, -0.25, -0.25]


def test_overlong_penalty_is_zero_then_linear_then_minus_one():
    lengths = torch.tensor([10, 12, 14, 16, 20])
    # max 16, buffer 4: free up to 12, then (12 - L) / 4, -1 past 16
    assert overlong_penalty(lengths, max_length=16, buffer=4).tolist() == [0.0, 0.0, -0.5, -1.0, -1.0]


def test_rewards_that_do_not_split_into_groups_are_refused():
    with pytest.raises(ValueError, match="groups of 4"):
        grpo_advantages(torch.zeros(6), 4)
