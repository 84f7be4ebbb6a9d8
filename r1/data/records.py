"""The one record every evaluation benchmark loads into, whatever its source file looked like.

A benchmark loader (`r1/data/benchmarks.py`) turns each source row into an `EvalRecord`; prompts
(`r1/eval/prompts.py`) and checks (`r1/eval/checks.py`) read only these fields, so a new benchmark is a loader
and nothing else. Choices:
- `kind` says how a response is graded: "math" (a gold answer, compared by the math verifier), "choice" (the
  correct letter among `choices`, already in the order the prompt shows them), "code" (`io_tests` run on
  stdin/stdout and/or `assert_tests` run against `entry_point`).
- `reference_solution` is the benchmark's own worked solution or canonical program, kept for the oracle checks
  (feeding it back as the response must score 100%) and for SFT data; it is never shown to the model.
- `metadata` carries what reports slice by (MATH subject and level, a Codeforces problem's contest id and
  difficulty rating, a GPQA domain) as plain JSON values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from r1.rewards.code import IOTest

KINDS = ("math", "choice", "code")


@dataclass(frozen=True)
class EvalRecord:
    """id: unique within its benchmark; problem: the question as the model sees it (for "choice" the stem
    only, the options are in `choices`; for "code" the statement, with `starter_code` the function header and
    docstring a HumanEval/MBPP completion starts from); answer: the gold answer (math) or correct letter
    (choice)."""

    id: str
    benchmark: str
    kind: str
    problem: str
    answer: str = ""
    choices: tuple[str, ...] = ()
    io_tests: tuple[IOTest, ...] = ()
    assert_tests: tuple[str, ...] = ()
    entry_point: str = ""
    starter_code: str = ""
    reference_solution: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"EvalRecord {self.id!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
