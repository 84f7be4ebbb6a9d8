"""Reward specs add the terms with their weights, as R1-Zero and R1 do."""

from __future__ import annotations

import pytest

from r1.errors import InvalidArgument
from r1.rewards.spec import RewardSpec, preset, score
from r1.rewards.verdict import RewardResult, Verdict

RIGHT = RewardResult(1.0, Verdict.CORRECT)
WRONG = RewardResult(0.0, Verdict.WRONG)
WELL_FORMED = "<think>add them: 2 plus 2</think><answer>4</answer>"


def test_r1_zero_is_accuracy_plus_format():
    spec = preset("r1-zero")
    assert score(spec, WELL_FORMED, RIGHT).total == 2.0
    assert score(spec, WELL_FORMED, WRONG).total == 1.0
    unformatted = score(spec, "4", RIGHT)
    assert (unformatted.total, unformatted.terms) == (1.0, {"accuracy": 1.0, "format": 0.0})
    assert unformatted.verdict == Verdict.CORRECT


def test_language_term_is_the_share_of_target_words():
    mixed = "<think>add 二加二</think><answer>4</answer>"  # 1 Latin word, 3 Chinese words
    scored = score(preset("r1-reasoning"), mixed, RIGHT)
    assert scored.terms["language"] == pytest.approx(0.25)
    assert scored.total == pytest.approx(1.0 + 1.0 + 0.25)


def test_weights_scale_their_terms():
    spec = RewardSpec(accuracy=2.0, format=0.5)
    assert score(spec, WELL_FORMED, RIGHT).total == pytest.approx(2.5)


def test_bad_specs_are_named():
    with pytest.raises(InvalidArgument, match="reward.format"):
        RewardSpec(format=-1)
    with pytest.raises(InvalidArgument, match="valid: accuracy, r1-zero, r1-reasoning"):
        preset("r2")
