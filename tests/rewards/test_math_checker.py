"""MathChecker end to end: Math-Verify's own test cases, verdicts, hostile inputs, deadlines, threads."""

from __future__ import annotations

import json
import threading
import time

import pytest

from r1.errors import InvalidArgument
from r1.rewards.math import CompareOptions, MathChecker, Profile, check_math
from r1.rewards.math_extract import ExtractionPolicy
from r1.rewards.math_symbolic import warm_up
from r1.rewards.symbolic_pool import SymbolicPool
from r1.rewards.verdict import Verdict
from tests.paths import SHARED_DATA

GRADER_BENCH = SHARED_DATA / "grader_bench" / "math_verify_test_cases.jsonl"
SLACK = 5.0  # process start-up on a loaded machine; never a speed assertion


@pytest.fixture(scope="module")
def pool():
    with SymbolicPool(2, warmup=warm_up) as p:
        assert p.wait_ready(120)
        yield p


@pytest.fixture(scope="module")
def checker(pool: SymbolicPool):
    with MathChecker(pool=pool) as c:
        yield c


# ------------------------------------------------------------------------------- Math-Verify's test cases


def _policy(match_types: list[str] | None) -> ExtractionPolicy:
    """How a row's harness parses both strings: ["latex"] -> LaTeX targets (boxed first, anchors, math
    environments), ["expr"] -> plain numbers and expressions, both (or default parsing) -> all of them."""
    types = set(match_types or ("latex", "expr"))
    return ExtractionPolicy(
        answer_tags=False, boxed="latex" in types, anchors=True, math_envs="latex" in types, numbers="expr" in types
    )


@pytest.mark.skipif(not GRADER_BENCH.exists(), reason="shared grader bench data not present")
def test_agreement_with_math_verify_test_cases(pool: SymbolicPool) -> None:
    rows = [json.loads(line) for line in GRADER_BENCH.read_text(encoding="utf-8").split("\n") if line.strip()]
    checkers: dict[CompareOptions, MathChecker] = {}
    disagreements = []
    for row in rows:
        options = CompareOptions(row["precision"], row["strict"], row["allow_set_relation_comp"])
        checker = checkers.setdefault(options, MathChecker(pool=pool, options=options))
        policy = _policy(row["match_types"])
        result = checker.check(row["pred"], row["gold"], policy, gold_policy=policy, deadline=10)
        if (result.verdict is Verdict.CORRECT) != bool(row["expected"]):
            disagreements.append(f"{row['id']}: expected {row['expected']}, got {result.verdict.name} "
                                 f"({result.detail}); gold={row['gold'][:60]!r} pred={result.extracted[:60]!r}")
    agreement = 1 - len(disagreements) / len(rows)
    print(f"\nagreement {agreement:.1%} on {len(rows)} rows; disagreements:", *disagreements, sep="\n  ")
    assert len(rows) == 269
    assert agreement >= 0.98, "\n".join(disagreements)


# ------------------------------------------------------------------------------------------------ verdicts


def test_verdicts_and_rewards(checker: MathChecker) -> None:
    correct = checker.check("so \\boxed{\\frac{1}{2}}", "0.5")
    assert (correct.verdict, correct.reward, correct.extracted) == (Verdict.CORRECT, 1.0, "\\frac{1}{2}")
    wrong = checker.check("so \\boxed{3}", "4")
    assert (wrong.verdict, wrong.reward) == (Verdict.WRONG, 0.0)
    none = checker.check("I think it is 4", "4")
    assert (none.verdict, none.reward, none.extracted) == (Verdict.NO_ANSWER, 0.0, "")
    assert checker.check("\\boxed{4}", "").verdict is Verdict.INVALID_INPUT
    assert checker.check("\\boxed{4}", "   ").verdict is Verdict.INVALID_INPUT


def test_profiles(checker: MathChecker) -> None:
    response = "We get $x = 7$ eventually, so 7"
    assert checker.check(response, "7", Profile.STRICT).verdict is Verdict.NO_ANSWER
    assert checker.check(response, "7", Profile.LENIENT).verdict is Verdict.CORRECT
    tagged = "<think>it might be \\boxed{6}</think><answer>7</answer>"
    assert checker.check(tagged, "7", Profile.STRICT).verdict is Verdict.CORRECT


def test_gold_first(checker: MathChecker) -> None:
    assert checker.check("\\boxed{x = 5}", "5").verdict is Verdict.CORRECT
    assert checker.check("\\boxed{5}", "k = 5").verdict is Verdict.CORRECT
    assert checker.check("\\boxed{\\{2, 1\\}}", "\\{1, 2\\}").verdict is Verdict.CORRECT
    assert checker.check("\\boxed{(2, 1)}", "(1, 2)").verdict is Verdict.WRONG  # tuples keep their order
    assert checker.check("\\boxed{(1, 2]}", "(1, 2)").verdict is Verdict.WRONG  # open/closed ends differ


@pytest.mark.parametrize(
    "response, gold, verdict",
    [  # answers the fast path leaves to the symbolic fallback
        ("\\boxed{\\sec^2(y)}", "\\tan^2(y)+1", Verdict.CORRECT),
        ("\\boxed{\\sin^2 x + \\cos^2 x}", "1", Verdict.CORRECT),
        ("\\boxed{1 - \\sin^2 x}", "\\cos^2 x", Verdict.CORRECT),
        ("\\boxed{2\\sin x \\cos x}", "\\sin 2x", Verdict.CORRECT),
        ("\\boxed{\\log_2 8}", "3", Verdict.CORRECT),
        ("\\boxed{e^{i\\pi}}", "1", Verdict.WRONG),
        ("\\boxed{x \\in (1,2) \\cup (3,4)}", "(1,2) \\cup (3,4)", Verdict.CORRECT),
    ],
)
def test_symbolic_fallback(checker: MathChecker, response: str, gold: str, verdict: Verdict) -> None:
    result = checker.check(response, gold, deadline=20)
    assert result.verdict is verdict, result.detail


def test_results_are_cached(pool: SymbolicPool) -> None:
    with MathChecker(pool=pool, cache_size=2) as small:
        first = small.check("\\boxed{\\sec^2(y)}", "\\tan^2(y)+1", deadline=20)
        again = small.check("the answer: \\boxed{\\sec^2(y)}", "\\tan^2(y)+1", deadline=20)
        assert first == again and first.verdict is Verdict.CORRECT
        for gold in ("1", "2", "3"):
            small.check("\\boxed{1}", gold)
        assert small.cached == 2  # bounded


def test_bad_arguments_raise(checker: MathChecker) -> None:
    with pytest.raises(InvalidArgument):
        checker.check(None, "1")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        checker.check("\\boxed{1}", "1", deadline=0)
    with pytest.raises(InvalidArgument):
        checker.check("\\boxed{1}", "1", "strict")  # type: ignore[arg-type]


def test_check_math_convenience(pool: SymbolicPool) -> None:
    assert check_math("\\boxed{\\dfrac{1}{2}}", "0.5").verdict is Verdict.CORRECT  # fast path: no pool needed
    assert check_math("\\boxed{\\sec^2(y)}", "\\tan^2(y)+1", pool=pool, deadline=20).verdict is Verdict.CORRECT


# ------------------------------------------------------------------------------------------ hostile inputs

HOSTILE = {
    "1 MB response": ("x" * 1_000_000 + " \\boxed{5}", "5"),
    "1 MB of numbers": ("1 " * 500_000, "5"),
    "1 MB of dollars": ("$" * 1_000_000, "5"),
    "10,000 nested braces": ("\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}", "1"),
    "a box, then 1 MB of braces": ("\\boxed{1}" + "{" * 500_000 + "}" * 500_000, "1"),
    "10,000 nested boxes": ("\\boxed{" * 10_000 + "1" + "}" * 10_000, "1"),
    "2,000 nested parentheses": ("\\boxed{" + "(" * 2_000 + "1" + ")" * 2_000 + "}", "1"),
    "lone surrogate": ("\\boxed{\ud800 5}", "5"),
    "lone surrogate in gold": ("\\boxed{5}", "\udfff5"),
    "power tower": ("\\boxed{10^{10^{10^{10}}}}", "1"),
    "power tower gold": ("\\boxed{1}", "10^{10^{10^{10}}}"),
    "huge factorial": ("\\boxed{1000000!}", "1"),
    "division by zero": ("\\boxed{\\frac{1}{0}}", "1"),
    "division by zero gold": ("\\boxed{1}", "\\frac{1}{0}"),
    "empty reference": ("\\boxed{1}", ""),
    "empty response": ("", "1"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_inputs_get_a_verdict_within_the_deadline(checker: MathChecker, name: str) -> None:
    response, gold = HOSTILE[name]
    deadline = 1.0
    for profile in (Profile.STRICT, Profile.LENIENT):
        start = time.monotonic()
        result = checker.check(response, gold, profile, deadline=deadline)
        assert isinstance(result.verdict, Verdict)
        assert result.verdict is not Verdict.INTERNAL
        assert time.monotonic() - start < deadline + SLACK
    if name.startswith("empty reference"):
        assert result.verdict is Verdict.INVALID_INPUT
    if name == "power tower":
        assert result.verdict is Verdict.TIMEOUT


def test_timeout_then_the_next_request_is_served(checker: MathChecker) -> None:
    assert checker.check("\\boxed{10^{10^{10^{10}}}}", "7", deadline=0.5).verdict is Verdict.TIMEOUT
    assert checker.check("\\boxed{\\sec^2(y)}", "\\tan^2(y)+1", deadline=20).verdict is Verdict.CORRECT


def test_checker_from_a_non_main_thread(checker: MathChecker) -> None:
    results = []
    thread = threading.Thread(
        target=lambda: results.extend(
            [
                checker.check("\\boxed{\\sec^2(z)}", "\\tan^2(z)+1", deadline=20),
                checker.check("\\boxed{10^{10^{10^{9}}}}", "3", deadline=0.5),
                checker.check("\\boxed{0.5}", "\\frac12"),
            ]
        )
    )
    thread.start()
    thread.join(120)
    assert [r.verdict for r in results] == [Verdict.CORRECT, Verdict.TIMEOUT, Verdict.CORRECT]
