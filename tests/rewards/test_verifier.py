"""The verifier dispatches every kind, answers each item by index, bounds admission and keeps deadlines."""

from __future__ import annotations

import time

import pytest

from r1.errors import ResourceExhausted
from r1.rewards.code import CodeRequest, IOTest
from r1.rewards.items import ChoiceCheck, FormatCheck, Item, LanguageCheck, MathCheck
from r1.rewards.sandbox import Limits
from r1.rewards.verdict import Verdict
from r1.rewards.verifier import Verifier, VerifierConfig

DOUBLER = CodeRequest("python", "", io_tests=(IOTest("3", "6"), IOTest("10", "20")))


@pytest.fixture(scope="module")
def verifier():
    with Verifier(VerifierConfig(workers=2, max_pending=8, deadline_seconds=20)) as v:
        yield v


def test_a_mixed_batch_comes_back_whole_by_index(verifier):
    items = [
        Item("so \\boxed{\\frac{1}{2}}", MathCheck("0.5"), id="math"),
        Item("Answer: C", ChoiceCheck("B"), id="choice"),
        Item("```python\nprint(int(input()) * 2)\n```", DOUBLER, id="code"),
        Item("<think>2 and 2</think><answer>4</answer>", FormatCheck(), id="format"),
        Item("<think>zwei plus zwei</think>", LanguageCheck("zh"), id="language"),
    ]
    results = {r.index: r for r in verifier.verify_batch(items)}
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert [results[i].id for i in range(5)] == ["math", "choice", "code", "format", "language"]
    verdicts = [results[i].result.verdict for i in range(5)]
    assert verdicts == [Verdict.CORRECT, Verdict.WRONG, Verdict.CORRECT, Verdict.CORRECT, Verdict.WRONG]
    assert results[2].result.tests_passed == 2 and results[2].kind == "code"
    assert all(r.elapsed >= 0 for r in results.values())


def test_a_bad_request_is_an_invalid_input_result_not_an_exception(verifier):
    [bad] = verifier.verify_batch([Item("Answer: A", ChoiceCheck("not a letter"))])
    assert bad.result.verdict == Verdict.INVALID_INPUT
    [no_tests] = verifier.verify_batch([Item("print(1)", CodeRequest("python", "print(1)"))])
    assert no_tests.result.verdict == Verdict.INVALID_INPUT


def test_a_batch_larger_than_the_free_slots_is_refused_whole(verifier):
    with pytest.raises(ResourceExhausted, match="queue is full"):
        verifier.submit_batch([Item("Answer: A", ChoiceCheck("A"))] * 9)
    assert verifier.pending == 0
    assert len(list(verifier.verify_batch([Item("Answer: A", ChoiceCheck("A"))] * 8))) == 8
    assert verifier.pending == 0


def test_an_item_past_its_deadline_gets_timeout_and_frees_its_slot(verifier):
    sleeper = CodeRequest("python", "import time\ntime.sleep(30)", io_tests=(IOTest("", ""),),
                          limits=Limits(wall_s=30, cpu_s=30))
    [late] = verifier.verify_batch([Item("", sleeper, deadline=1.0)])
    assert late.result.verdict == Verdict.TIMEOUT  # from the timer, or the judge's cut wall clock: both at 1s
    stop_waiting = time.monotonic() + 5  # the judge cut the run's wall clock to the deadline: well before 30s
    while verifier.pending and time.monotonic() < stop_waiting:
        time.sleep(0.05)
    assert verifier.pending == 0
    [next_one] = verifier.verify_batch([Item("Answer: A", ChoiceCheck("A"))])
    assert next_one.result.verdict == Verdict.CORRECT
