"""Canonical HumanEval and MBPP solutions pass the code judge, and broken HumanEval solutions fail it.

Both are marked slow (about 10-15 s each on 2 cores, 328 and 426 sandboxed runs). Each check block runs under
the evaluation's limit for one (`ASSERT_BLOCK_SECONDS`): MbppEval/123's own program takes the default 5 s.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest

from r1.eval.checks import ASSERT_BLOCK_SECONDS
from r1.rewards.code import PYTHON, CodeRequest, judge, request_limits
from r1.rewards.sandbox import Sandbox
from r1.rewards.verdict import RewardResult, Verdict
from tests.paths import SHARED_DATA

HUMANEVAL = SHARED_DATA / "humaneval" / "HumanEval.jsonl.gz"
MBPP = SHARED_DATA / "mbpp" / "mbpp_sanitized_for_code_generation.jsonl"
# Canonical MBPP solutions that cannot pass their own tests in this (HumanEval-style) format:
MBPP_EXCLUDED = {
    # The function under test is itself named `check`: the test's `def check(candidate)` replaces it, so
    # `check(70)` inside the test calls the test again (RecursionError).
    "MbppEval/56",
}
CHECK_BLOCK_LIMITS = request_limits(time_limit_seconds=ASSERT_BLOCK_SECONDS)
_DOCSTRING = re.compile(r"^[ \t]*'''.*?'''[ \t]*\n", re.DOTALL | re.MULTILINE)


def load(path: Path) -> list[dict]:
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def judge_all(sandbox: Sandbox, requests: list[CodeRequest]) -> list[RewardResult]:
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda r: judge(r, sandbox), requests))


def humaneval_request(item: dict, body: str) -> CodeRequest:
    program = item["prompt"] + body
    return CodeRequest(PYTHON, program, assert_tests=(item["test"],), entry_point=item["entry_point"],
                       limits=CHECK_BLOCK_LIMITS)


@pytest.mark.slow
def test_humaneval_canonical_solutions_pass_and_broken_ones_fail(sandbox):
    items = load(HUMANEVAL)
    assert len(items) == 164
    good = judge_all(sandbox, [humaneval_request(it, it["canonical_solution"]) for it in items])
    failed = {it["task_id"]: r.detail for it, r in zip(items, good) if r.verdict is not Verdict.CORRECT}
    assert failed == {}
    # `return None` as the whole body: checked to fail every one of the 164 tests (none expects None)
    broken = judge_all(sandbox, [humaneval_request(it, "    return None\n") for it in items])
    passed = [it["task_id"] for it, r in zip(items, broken) if r.verdict is Verdict.CORRECT or r.reward > 0]
    assert passed == []
    assert {r.verdict for r in broken} <= {Verdict.WRONG, Verdict.RUNTIME_ERROR}


def mbpp_request(item: dict) -> CodeRequest:
    """The full solution: the prompt without its docstring (indented unlike the canonical body, so prompt +
    body would not parse), then the body. Tests that use `math.` get MBPP's `import math` test import back,
    which this HumanEval-style conversion dropped."""
    program = _DOCSTRING.sub("", item["prompt"], count=1) + item["canonical_solution"]
    test = ("import math\n" if "math." in item["test"] else "") + item["test"]
    return CodeRequest(PYTHON, program, assert_tests=(test,), entry_point=item["entry_point"],
                       limits=CHECK_BLOCK_LIMITS)


@pytest.mark.slow
def test_mbpp_canonical_solutions_pass(sandbox):
    items = load(MBPP)
    assert len(items) == 427
    kept = [it for it in items if it["task_id"] not in MBPP_EXCLUDED]
    results = judge_all(sandbox, [mbpp_request(it) for it in kept])
    failed = {it["task_id"]: r.detail for it, r in zip(kept, results) if r.verdict is not Verdict.CORRECT}
    assert failed == {}
    assert len(kept) == 426
