"""The numbers of the R1 evaluation protocol, as small pure functions over per-sample correctness.

Follows DeepSeek-R1 (section 3, "Evaluation Setup"): k samples per question at temperature 0.6 / top-p 0.95;
pass@1 = the mean correctness of those samples, averaged over questions; cons@k = majority vote over the
extracted answers. pass@k (k > 1) uses the unbiased estimator of Chen et al. 2021 (Codex, eq. 1), computed as
a running product so that n choose k never overflows. Choices:
- Standard errors are over questions: the sample standard deviation of the per-question scores divided by
  sqrt(questions) (what lm-eval and simple-evals report), so they shrink with more questions, not with more
  samples of the same question.
- cons@k votes among the samples that gave an answer; a question with none is wrong. Ties go to the answer
  seen first (lowest sample index), which keeps the vote deterministic.
- Answers vote by their extracted, normalised form as the verifier returns it; two spellings of one value
  ("0.5", "\\frac12") that the verifier normalised differently vote apart, a conservative choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples drawn without replacement from n (c of them correct) is
    correct: 1 - C(n - c, k) / C(n, k)."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def majority_answer(answers: Sequence[str | None]) -> str | None:
    """The most frequent non-empty answer; ties go to the one seen first; None when no sample answered."""
    counts: dict[str, int] = {}
    for answer in answers:
        if answer:
            counts[answer] = counts.get(answer, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    return next(answer for answer in counts if counts[answer] == best)  # dicts keep first-seen order


def consensus_correct(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """cons@k for one question: is the majority answer a correct one?"""
    winner = majority_answer(answers)
    return winner is not None and any(ok for answer, ok in zip(answers, correct) if answer == winner)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean (sample std / sqrt(n)); 0 for a single value, NaN for none."""
    n = len(values)
    if n == 0:
        return float("nan")
    if n == 1:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between order statistics (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Score:
    """A benchmark-level number with its standard error over questions."""

    value: float
    stderr: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "stderr": self.stderr}


def pass_at_1(correct_by_question: Sequence[Sequence[bool]]) -> Score:
    """Mean over questions of each question's share of correct samples."""
    per_question = [mean([float(ok) for ok in samples]) for samples in correct_by_question if samples]
    return Score(mean(per_question), standard_error(per_question))


def pass_at(correct_by_question: Sequence[Sequence[bool]], k: int) -> Score:
    """Unbiased pass@k over questions; questions with fewer than k samples are an error (say how many)."""
    short = [len(samples) for samples in correct_by_question if len(samples) < k]
    if short:
        raise ValueError(f"pass@{k} needs at least {k} samples per question; {len(short)} question(s) have "
                         f"{min(short)}: sample more (k >= {k}) or ask for a smaller k")
    per_question = [pass_at_k(len(samples), sum(samples), k) for samples in correct_by_question]
    return Score(mean(per_question), standard_error(per_question))


def cons_at(answers_by_question: Sequence[Sequence[str | None]],
            correct_by_question: Sequence[Sequence[bool]]) -> Score:
    """Majority-vote accuracy over questions (cons@k with k = the samples each question has)."""
    per_question = [float(consensus_correct(answers, correct))
                    for answers, correct in zip(answers_by_question, correct_by_question)]
    return Score(mean(per_question), standard_error(per_question))


def pass_at_k_curve(correct_by_question: Sequence[Sequence[bool]]) -> dict[int, float]:
    """pass@k for k = 1, 2, 4, ... up to the fewest samples any question has (and that number itself)."""
    if not correct_by_question:
        return {}
    n = min(len(samples) for samples in correct_by_question)
    ks = sorted({*(2 ** i for i in range(max(n, 1).bit_length()) if 2 ** i <= n), n} - {0})
    return {k: pass_at(correct_by_question, k).value for k in ks}


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    """Response lengths in tokens: mean, median, p90, max (NaN / 0 when there are none)."""
    values = [float(x) for x in lengths]
    return {"mean": mean(values), "median": percentile(values, 50), "p90": percentile(values, 90),
            "max": max(values) if values else 0.0}
