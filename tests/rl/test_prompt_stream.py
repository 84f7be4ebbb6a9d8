"""The data cursor: a seeded shuffle per epoch; with skip_zero_variance, prompts whose last group had zero
reward variance are passed over at that rate when the stream comes back to them, and its state round-trips."""

from __future__ import annotations

import pytest

from r1.data.synthetic import generate
from r1.errors import InvalidArgument
from r1.rl.grpo import GRPOConfig, PromptStream

PROBLEMS = generate("word", 40, seed=5, difficulty=1)


def test_without_skipping_every_epoch_is_a_shuffle_of_all_problems_whatever_was_recorded():
    stream = PromptStream(PROBLEMS, seed=3)
    first = stream.take(40)
    stream.record(first, [True] * 40)
    second = stream.take(40)
    assert sorted(p.id for p in first) == sorted(p.id for p in second) == sorted(p.id for p in PROBLEMS)
    assert [p.id for p in first] != [p.id for p in second] and stream.skipped == 0


def test_zero_variance_prompts_are_passed_over_at_the_given_rate_and_an_informative_group_clears_the_mark():
    stream = PromptStream(PROBLEMS, seed=3, skip_zero_variance=0.75)
    first = stream.take(40)
    marked = {p.id for p in first[:20]}
    stream.record(first, [p.id in marked for p in first])
    seen = {p.id: 0 for p in PROBLEMS}
    for _ in range(40):  # 40 more epochs' worth of prompts
        for p in stream.take(20):
            seen[p.id] += 1
    unmarked_rate = sum(seen[p.id] for p in PROBLEMS if p.id not in marked) / 20
    marked_rate = sum(seen[p.id] for p in PROBLEMS if p.id in marked) / 20
    assert marked_rate / unmarked_rate == pytest.approx(0.25, abs=0.08)  # re-tested a quarter of the time
    assert stream.skipped > 0
    stream.record([p for p in PROBLEMS if p.id in marked], [False] * 20)
    assert not stream.zero_variance


def test_the_state_round_trips_marks_included():
    stream = PromptStream(PROBLEMS, seed=3, skip_zero_variance=0.5)
    taken = stream.take(30)
    stream.record(taken, [i % 2 == 0 for i in range(30)])
    state = stream.state()
    expected = [p.id for p in stream.take(50)]
    resumed = PromptStream(PROBLEMS, seed=3, skip_zero_variance=0.5)
    resumed.restore(state)
    assert [p.id for p in resumed.take(50)] == expected and resumed.skipped == stream.skipped


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_a_skip_rate_outside_zero_to_one_is_refused(value):
    with pytest.raises(InvalidArgument) as error:
        GRPOConfig(skip_zero_variance=value).check()
    assert error.value.field == "grpo.skip_zero_variance"
