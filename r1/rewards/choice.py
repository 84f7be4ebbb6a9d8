"""Multiple-choice answers (GPQA-Diamond and the like), extracted the way simple-evals does.

simple-evals reads the letter from an "Answer: X" line (`(?i)Answer[ \\t]*:[ \\t]*\\$?([A-D])\\$?`). We do the
same, with the decorations models actually produce tolerated: `$X$`, `**X**`, `(X)`, `\\boxed{X}`,
`\\text{X}`. Choices:
- The chain of thought is ignored when it is closed (`</think>`): reasoning models write "Answer: B?"
  while thinking and change their minds.
- The *last* "Answer:" line wins (a model that corrects itself is judged on its correction), then a
  boxed letter, then "the answer is (X)".
- Letters run from A to the number of choices (4 when not given), so "Answer: E" on a four-choice
  question is NO_ANSWER, not a wrong guess at an option that does not exist.
Deliberately not done: matching the option *text* instead of the letter (simple-evals does not either).
"""

from __future__ import annotations

import re
import string

from r1.rewards.verdict import RewardResult, Verdict

_DECOR = r"[\s*_$(\[{]*(?:\\(?:text|textbf|mathrm|mathbf)\{)?"
_ANSWER_LINE = re.compile(r"(?i)answer[ \t]*(?:is)?[ \t]*[:：][ \t]*" + _DECOR + r"([A-Z])\b")
_BOXED = re.compile(r"\\boxed\{" + r"(?:\\(?:text|textbf|mathrm)\{)?\(?([A-Z])\)?\}")
_ANSWER_IS = re.compile(r"(?i)answer is[ \t]*" + _DECOR + r"([A-Z])\b")


def after_thinking(response: str) -> str:
    """The part of a response after its last `</think>` (all of it when there is none)."""
    head, sep, tail = response.rpartition("</think>")
    return tail if sep else response


def extract_choice(response: str, n_choices: int = 4) -> str:
    """The chosen letter, or "" when the response names no valid one."""
    valid = set(string.ascii_uppercase[:n_choices])
    text = after_thinking(response)
    for pattern in (_ANSWER_LINE, _BOXED, _ANSWER_IS):
        letters = [m.upper() for m in pattern.findall(text) if m.upper() in valid]
        if letters:
            return letters[-1]
    return ""


def check_choice(response: str, reference: str, choices: tuple[str, ...] = ()) -> RewardResult:
    """CORRECT (1.0) when the extracted letter is the reference letter; WRONG or NO_ANSWER (0.0) else."""
    n_choices = len(choices) or 4
    gold = reference.strip().strip("()$*").upper()
    if len(gold) != 1 or gold not in string.ascii_uppercase[:n_choices]:
        return RewardResult(0.0, Verdict.INVALID_INPUT,
                            f"reference must be one letter among A-{string.ascii_uppercase[n_choices - 1]}, "
                            f"got {reference!r}")
    letter = extract_choice(response, n_choices)
    if not letter:
        return RewardResult(0.0, Verdict.NO_ANSWER, "no 'Answer: X' line with a valid letter")
    if letter == gold:
        return RewardResult(1.0, Verdict.CORRECT, f"answered {letter}", extracted=letter)
    return RewardResult(0.0, Verdict.WRONG, f"answered {letter}, expected {gold}", extracted=letter)
