"""Record -> verifier check, and the oracle checks: each benchmark's own reference, fed back through the
in-process Verifier, scores pass@1 = 100%, and a wrong response 0%.

Math and choice run on any host (a degraded sandbox is enough for them); code needs the full sandbox and is
skipped, with the reason, where the host cannot provide it (as in tests/rewards). The code oracles run on a
deterministic subset by default (every 8th problem); the full HumanEval + MBPP run (~35 s on 2 cores, 1182
sandboxed runs) and the full wrong-program run over Codeforces and CodeContests are marked slow.
"""

from __future__ import annotations

import pytest

from r1.data.benchmarks import load_benchmark
from r1.data.records import EvalRecord
from r1.errors import InvalidArgument
from r1.eval.checks import check_for, oracle_response, wrong_response
from r1.rewards.code import ALL_OR_NOTHING, CPP, PYTHON, CodeRequest, IOTest, request_limits
from r1.rewards.items import ChoiceCheck, MathCheck
from r1.rewards.math import Profile
from r1.rewards.sandbox import SandboxConfig, SandboxUnavailable
from r1.rewards.verdict import Verdict
from r1.rewards.verifier import Verifier, VerifierConfig
from tests.paths import SHARED_DATA

MATH_AND_CHOICE = ("aime24", "aime25", "amc23", "math500", "synthetic", "gpqa_diamond")
# Canonical MBPP programs that cannot pass their own tests: the function under test is named `check`, so
# the test's `def check(candidate)` replaces it and `check(70)` recurses (see tests/rewards/test_code_datasets.py).
MBPP_BROKEN = {"MbppEval/56"}
SUBSET = slice(None, None, 8)

MIN_MAX = """t = int(input())
for _ in range(t):
    x, y = map(int, input().split())
    print(min(x, y), max(x, y))
"""
MIN_MAX_CPP = """#include <algorithm>
#include <iostream>
int main() {
    int t; std::cin >> t;
    while (t--) { int x, y; std::cin >> x >> y; std::cout << std::min(x, y) << ' ' << std::max(x, y) << '\\n'; }
}
"""
# CodeContests problem 140 (squares and cubes up to n, 138 tests), exact integer roots
SQUARES_AND_CUBES = """import sys
from math import isqrt

def iroot(n, k):
    r = round(n ** (1.0 / k))
    while r ** k > n:
        r -= 1
    while (r + 1) ** k <= n:
        r += 1
    return r

data = sys.stdin.read().split()
print("\\n".join(str(isqrt(n) + iroot(n, 3) - iroot(n, 6)) for n in map(int, data[1:1 + int(data[0])])))
"""
# the same with a floating cube root (int(64 ** (1/3)) == 3): right on most tests, so 0 under all-or-nothing
SQUARES_AND_CUBES_FLOAT = SQUARES_AND_CUBES.replace("r = round(n ** (1.0 / k))", "return int(n ** (1.0 / k))")


def fenced(program: str, language: str = "python") -> str:
    return f"<think>easy</think>\nHere it is:\n```{language}\n{program}```\n"


@pytest.fixture(scope="module")
def verifier():
    """(verifier, full sandbox?): the full sandbox when the host has it, else a degraded one, enough for
    math and choice; code tests skip on the latter."""
    try:
        v = Verifier(VerifierConfig(workers=2, math_workers=2, deadline_seconds=30))
        full = True
    except SandboxUnavailable:
        v = Verifier(VerifierConfig(workers=2, math_workers=2, deadline_seconds=30,
                                    sandbox=SandboxConfig(allow_degraded=True)))
        full = False
    with v:
        yield v, full


@pytest.fixture()
def code_verifier(verifier):
    v, full = verifier
    if not full:
        pytest.skip("the full sandbox is not available here")
    return v


def records_of(name: str) -> list[EvalRecord]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not on this machine")
    return load_benchmark(name, data_dir=SHARED_DATA)


def grade(verifier: Verifier, records: list[EvalRecord], responses: list[str]) -> dict[str, object]:
    """Record id -> RewardResult."""
    results = verifier.verify_batch([check_for(r, text) for r, text in zip(records, responses)])
    return {records[v.index].id: v.result for v in results}


def solved(results: dict) -> set[str]:
    return {rid for rid, r in results.items() if r.reward == 1.0 and r.verdict is Verdict.CORRECT}


# ------------------------------------------------------------------------------------------------ the mapping


def test_math_and_choice_records_map_to_their_checks():
    math = EvalRecord("1", "amc23", "math", "2+2?", answer="4")
    item = check_for(math, "so \\boxed{4}")
    assert item.check == MathCheck("4", Profile.LENIENT) and item.id == "1" and item.response == "so \\boxed{4}"
    choice = EvalRecord("2", "gpqa_diamond", "choice", "Q?", answer="C", choices=("a", "b", "c", "d"))
    assert check_for(choice, "Answer: C").check == ChoiceCheck("C", ("a", "b", "c", "d"))


def test_code_records_map_to_an_all_or_nothing_request_from_the_fence():
    record = EvalRecord("3", "codeforces", "code", "min/max", io_tests=(IOTest("1\n1 2\n", "1 2"),))
    request = check_for(record, fenced(MIN_MAX)).check
    assert isinstance(request, CodeRequest)
    assert (request.language, request.source, request.io_tests) == (PYTHON, MIN_MAX, record.io_tests)
    assert request.score_mode == ALL_OR_NOTHING and request.stop_at_first_failure
    assert check_for(record, fenced(MIN_MAX_CPP, "cpp")).check.language == CPP
    assert check_for(record, fenced(MIN_MAX)).deadline is None  # few tests: the verifier's default
    assert request.limits == request_limits()  # one io test is one input: the default 5 s
    many = EvalRecord("5", "code_contests", "code", "echo", io_tests=(IOTest("1", "1"),) * 100)
    assert check_for(many, fenced(MIN_MAX)).deadline == 35.0
    function = EvalRecord("4", "humaneval", "code", "f", assert_tests=("def check(c): assert c() == 1",),
                          entry_point="f")
    request = check_for(function, "```py\ndef f():\n    return 1\n```").check
    assert (request.assert_tests, request.entry_point, request.source) == (
        function.assert_tests, "f", "def f():\n    return 1\n")
    # an assert test is a whole check block: 15 s for it (MbppEval/123's own program needs 5 s), and an item
    # deadline that does not cut it short
    assert request.limits == request_limits(time_limit_seconds=15.0)
    assert check_for(function, "").deadline == 17.0
    # assert tests are Python-only: a C++ answer is not run as C++, it simply has no Python program
    assert check_for(function, fenced(MIN_MAX_CPP, "cpp")).check.language == PYTHON


def test_oracle_responses():
    assert oracle_response(EvalRecord("1", "aime25", "math", "p", answer="70")) == "The final answer is $\\boxed{70}$."
    solution = "so the answer is $\\boxed{3}$."
    assert oracle_response(EvalRecord("1", "math500", "math", "p", answer="3", reference_solution=solution)) == solution
    for letter, wrong in (("B", "C"), ("D", "A")):
        record = EvalRecord("1", "gpqa_diamond", "choice", "p", answer=letter, choices=tuple("wxyz"))
        assert (oracle_response(record), wrong_response(record)) == (f"Answer: {letter}", f"Answer: {wrong}")
    assert wrong_response(EvalRecord("1", "amc23", "math", "p", answer="27")) == "The final answer is $\\boxed{28}$."


def test_codeforces_and_code_contests_have_no_oracle():
    for name in ("codeforces", "code_contests"):
        record = records_of(name)[0]
        with pytest.raises(InvalidArgument, match="no reference program"):
            oracle_response(record)


# ------------------------------------------------------------------------------------------------ oracles


@pytest.mark.parametrize("name", MATH_AND_CHOICE)
def test_math_and_choice_references_score_100_and_wrong_answers_0(verifier, name):
    v, _ = verifier
    records = records_of(name)
    good = grade(v, records, [oracle_response(r) for r in records])
    assert {rid: (r.verdict, r.detail) for rid, r in good.items() if r.verdict is not Verdict.CORRECT} == {}
    assert sum(r.reward for r in good.values()) == len(records)  # pass@1 = 100%
    bad = grade(v, records, [wrong_response(r) for r in records])
    assert solved(bad) == set() and sum(r.reward for r in bad.values()) == 0
    assert {r.verdict for r in bad.values()} == {Verdict.WRONG}


def _code_oracle(v: Verifier, name: str, records: list[EvalRecord]) -> None:
    good = grade(v, records, [oracle_response(r) for r in records])
    broken = MBPP_BROKEN if name == "mbpp" else set()
    assert {rid: r.detail for rid, r in good.items() if r.verdict is not Verdict.CORRECT} == {
        rid: good[rid].detail for rid in broken if rid in good}
    assert solved(good) == {r.id for r in records} - broken
    bad = grade(v, records, [wrong_response(r) for r in records])
    assert solved(bad) == set() and sum(r.reward for r in bad.values()) == 0
    assert {r.verdict for r in bad.values()} <= {Verdict.WRONG, Verdict.RUNTIME_ERROR}


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
def test_canonical_programs_score_100_on_a_subset(code_verifier, name):
    records = records_of(name)
    _code_oracle(code_verifier, name, records[SUBSET] + [r for r in records if r.id in MBPP_BROKEN])


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
def test_canonical_programs_score_100_on_every_problem(code_verifier, name):
    records = records_of(name)
    assert len(records) == {"humaneval": 164, "mbpp": 427}[name]
    _code_oracle(code_verifier, name, records)


def test_hand_written_programs_solve_codeforces_and_code_contests(code_verifier):
    min_max = records_of("codeforces")[0]
    assert min_max.id == "1971A"
    squares = next(r for r in records_of("code_contests") if r.id == "140")
    assert len(squares.io_tests) == 138
    cases = [(min_max, fenced(MIN_MAX)), (min_max, fenced(MIN_MAX_CPP, "cpp")), (squares, fenced(SQUARES_AND_CUBES)),
             (min_max, wrong_response(min_max)), (squares, wrong_response(squares)),
             (squares, fenced(SQUARES_AND_CUBES_FLOAT)),
             (min_max, fenced(MIN_MAX.replace("min(x, y), max", "max(x, y), min")))]
    results = list(code_verifier.verify_batch([check_for(r, text) for r, text in cases]))
    got = [r.result for r in sorted(results, key=lambda r: r.index)]
    assert [(r.verdict, r.reward) for r in got] == [(Verdict.CORRECT, 1.0)] * 3 + [(Verdict.WRONG, 0.0)] * 4
    assert got[2].tests_passed == 138


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["codeforces", "code_contests"])
def test_a_silent_program_solves_no_competition_problem(code_verifier, name):
    records = records_of(name)
    bad = grade(code_verifier, records, [wrong_response(r) for r in records])
    assert solved(bad) == set() and {r.verdict for r in bad.values()} == {Verdict.WRONG}
