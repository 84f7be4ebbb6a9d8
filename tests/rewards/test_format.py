"""The R1-Zero format reward: one think block, then one answer, nothing else."""

from __future__ import annotations

import pytest

from r1.rewards.format import check_format
from r1.rewards.verdict import Verdict


@pytest.mark.parametrize("response", [
    "<think>2+2 is 4</think><answer>4</answer>",
    "  <think>\nlong reasoning\n</think>\n<answer> 4 </answer>\n",
    "<think>so x = 4</think> The answer is $\\boxed{4}$.",
])
def test_well_formed_responses_score_one(response):
    result = check_format(response)
    assert (result.verdict, result.reward) == (Verdict.CORRECT, 1.0)


@pytest.mark.parametrize("response, reason", [
    ("<answer>4</answer>", "expected one <think>"),
    ("<think>a</think><think>b</think><answer>4</answer>", "expected one <think>"),
    ("</think>x<think><answer>4</answer>", "</think> comes before <think>"),
    ("Sure! <think>a</think><answer>4</answer>", "text before <think>"),
    ("<think>   </think><answer>4</answer>", "empty reasoning"),
    ("<think>a</think><answer>4</answer> hope this helps", "exactly one <answer>"),
    ("<think>a</think><answer>4</answer><answer>5</answer>", "exactly one <answer>"),
    ("<think>a</think><answer>4", "exactly one <answer>"),
    ("<think>a</think><answer> </answer>", "empty <answer>"),
    ("<think>a</think> it is 4", "no <answer>"),
    ("<think>reasoning never closes <answer>4</answer>", "expected one <think>"),
])
def test_each_broken_rule_is_named(response, reason):
    result = check_format(response)
    assert (result.verdict, result.reward) == (Verdict.FORMAT_ERROR, 0.0)
    assert reason in result.detail


def test_prefilled_think_tag():
    assert check_format("reasoning</think><answer>4</answer>", think_prefilled=True).reward == 1.0
    assert check_format("<think>reasoning</think><answer>4</answer>", think_prefilled=True).reward == 0.0
