"""From a benchmark record and a model response to the verifier item that grades it, and the oracle responses.

`check_for(record, response)` is the one mapping from `EvalRecord.kind` to a check:
- math: `MathCheck(answer, Profile.LENIENT)`, the evaluation profile (the last boxed answer, else a final
  answer line, else the last math environment or number; RL rewards use STRICT instead);
- choice: `ChoiceCheck(answer, choices)` (simple-evals' "Answer: X", letters bounded by the choices);
- code: a `CodeRequest` whose program is taken from the response (`extract_code`: the last fenced block
  after `</think>`), in the fence's language (Python unless tagged C++; always Python for assert tests),
  with the record's io tests, assert tests and entry point, scored all-or-nothing (a problem counts as
  solved only when every test passes) and stopped at the first failure (the reward cannot change after
  it). io tests run under the default per-test limits and an item with many of them gets a longer deadline;
  an assert test is a whole check block, so it runs under `ASSERT_BLOCK_SECONDS` (`code_limits`,
  `code_deadline`).

`oracle_response(record)` writes the benchmark's own reference as a response (it must score 100%: the check
for the loaders and the grader together) and `wrong_response(record)` one that must score 0. Codeforces and
CodeContests ship no reference programs, so their oracle raises; test those with hand-written programs.
"""

from __future__ import annotations

import re
import string

from r1.data.records import EvalRecord
from r1.errors import InvalidArgument
from r1.rewards.code import ALL_OR_NOTHING, PYTHON, CodeRequest, extract_code, infer_language, request_limits
from r1.rewards.items import ChoiceCheck, Item, MathCheck
from r1.rewards.math import Profile
from r1.rewards.sandbox import Limits

__all__ = ["check_for", "oracle_response", "wrong_response"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
MANY_TESTS = 20
BASE_SECONDS = 10.0
SECONDS_PER_TEST = 0.25
ASSERT_BLOCK_SECONDS = 15.0
STARTUP_SECONDS = 2.0
_FAR_ANSWER = "1000003"  # no benchmark answer is this; used when the gold answer is not a plain number


def check_for(record: EvalRecord, response: str) -> Item:
    """The verifier item grading `response` to `record` (id: the record's)."""
    if record.kind == "math":
        return Item(response, MathCheck(record.answer, Profile.LENIENT), id=record.id)
    if record.kind == "choice":
        return Item(response, ChoiceCheck(record.answer, tuple(record.choices)), id=record.id)
    language = PYTHON if record.assert_tests else infer_language(response)  # assert tests are Python-only
    request = CodeRequest(language, extract_code(response, language), io_tests=tuple(record.io_tests),
                          assert_tests=tuple(record.assert_tests), entry_point=record.entry_point,
                          limits=code_limits(record), score_mode=ALL_OR_NOTHING, stop_at_first_failure=True)
    return Item(response, request, id=record.id, deadline=code_deadline(len(record.io_tests), len(record.assert_tests)))


def code_limits(record: EvalRecord) -> Limits:
    """The per-test limits of a code record: `ASSERT_BLOCK_SECONDS` for assert tests, else the defaults.

    An assert test is the benchmark's whole check block (HumanEval's `check(candidate)` holds up to ~100
    assertions), not one input, and some canonical programs are slow: MbppEval/123's O(n^2) amicable-number
    sum takes 5.0 s alone on 2 cores, the default limit itself. 15 s is three times that; a model's
    infinite loop costs one worker 15 s."""
    return request_limits(time_limit_seconds=ASSERT_BLOCK_SECONDS) if record.assert_tests else request_limits()


def code_deadline(io_tests: int, assert_tests: int) -> float | None:
    """The item deadline of a code check: with assert tests, `ASSERT_BLOCK_SECONDS` each plus
    `STARTUP_SECONDS`; with io tests, the verifier's default (None) up to `MANY_TESTS`, then
    `SECONDS_PER_TEST` each on top of `BASE_SECONDS` (CodeContests has up to 138 tests; at ~45 ms per
    sandboxed Python run on 2 cores those take 6 s of the default 10 s deadline)."""
    if assert_tests:
        return STARTUP_SECONDS + ASSERT_BLOCK_SECONDS * assert_tests
    return None if io_tests <= MANY_TESTS else BASE_SECONDS + SECONDS_PER_TEST * io_tests


def oracle_response(record: EvalRecord) -> str:
    """The reference as a response: math -> the worked solution when it boxes its answer, else
    "\\boxed{answer}"; choice -> "Answer: X"; code -> the canonical program in a ```python fence.
    InvalidArgument for a code record without a reference program (Codeforces, CodeContests)."""
    if record.kind == "math":
        if "\\boxed" in record.reference_solution:
            return record.reference_solution
        return f"The final answer is $\\boxed{{{record.answer}}}$."
    if record.kind == "choice":
        return f"Answer: {record.answer}"
    if not record.reference_solution:
        raise InvalidArgument(f"{record.benchmark}[{record.id}].reference_solution",
                              "this benchmark ships no reference program, so no oracle response can be built; "
                              "grade a hand-written program instead")
    return f"```{PYTHON}\n{record.reference_solution.rstrip()}\n```"


def wrong_response(record: EvalRecord) -> str:
    """A response that must score 0: math -> a different boxed number; choice -> the next letter;
    code -> a program that prints nothing (io tests) or whose entry point returns None (assert tests)."""
    if record.kind == "math":
        answer = record.answer.strip()
        wrong = str(int(float(answer)) + 1) if _NUMBER.fullmatch(answer) else _FAR_ANSWER
        return f"The final answer is $\\boxed{{{wrong}}}$."
    if record.kind == "choice":
        letters = string.ascii_uppercase[:len(record.choices) or 4]
        return f"Answer: {letters[(letters.index(record.answer) + 1) % len(letters)]}"
    if record.assert_tests and record.entry_point:
        return f"```python\ndef {record.entry_point}(*args, **kwargs):\n    return None\n```"
    return "```python\npass\n```"
