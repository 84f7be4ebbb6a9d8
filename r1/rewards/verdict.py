"""The outcome of one check: a verdict and a reward.

`Verdict` mirrors the wire enum `r1.verifier.v1.Verdict` name for name (the verifier's convert.py maps
between them by name). A checker never raises on bad model output: a response with no answer is
NO_ANSWER, not an exception. INVALID_INPUT is for a bad *reference or request* (e.g. an empty gold answer),
INTERNAL for a checker bug or a crashed worker, so that the reward pipeline never loses an item.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    CORRECT = "CORRECT"
    WRONG = "WRONG"
    NO_ANSWER = "NO_ANSWER"
    FORMAT_ERROR = "FORMAT_ERROR"
    COMPILE_ERROR = "COMPILE_ERROR"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    INVALID_INPUT = "INVALID_INPUT"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class RewardResult:
    """One check's outcome.

    reward: in [0, 1] for every kind (code: fraction of tests passed, or 0/1 when all-or-nothing).
    verdict: what happened, see `Verdict`.
    detail: one human-readable line (why it is wrong, which test failed, what was extracted).
    extracted: the answer pulled out of the response, if any ("" otherwise).
    tests_passed / tests_total: code only.
    """

    reward: float
    verdict: Verdict
    detail: str = ""
    extracted: str = ""
    tests_passed: int = 0
    tests_total: int = 0
