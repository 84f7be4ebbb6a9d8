"""A Codeforces rating estimated offline from which rated problems a model solves.

The Elo model Codeforces difficulty ratings are defined by: a participant rated R solves a problem rated r_p
with probability P(R) = 1 / (1 + 10^((r_p - R) / 400)) (a problem's rating is the participant rating at which
that chance is one half). Given per-problem outcomes -- s_i solved samples out of n_i -- the maximum-
likelihood R solves sum_i n_i P_i(R) = sum_i s_i: the log-likelihood is concave in R and its derivative
(ln 10 / 400) * sum_i (s_i - n_i P_i(R)) falls monotonically, so bisection finds the root exactly. The
standard error is 1 / sqrt(Fisher information), I(R) = (ln 10 / 400)^2 * sum_i n_i P_i (1 - P_i).

How this differs from the contest-based ratings of DeepSeek-R1 and CodeElo: those place the model in the
standings of each real contest (its submissions' times and penalties against the human participants') and
average the resulting performance ratings; this needs no standings, only each problem's difficulty rating,
and it treats every sample as an independent attempt with unlimited time. It is a like-for-like yardstick
between checkpoints, not a number to quote beside a human's rating. When a model solves every problem or
none, the likelihood has no maximum inside the range: the estimate is pinned to the range's end and flagged.

The percentile is the share of 2024's rated participants (`codeforces_ratings_2024.json`: rating -> how many)
rated below the estimate, counting those exactly at it as half.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LN10_OVER_400 = math.log(10) / 400
RATING_RANGE = (-1000.0, 5000.0)


def solve_probability(rating: float, problem_rating: float) -> float:
    """P(a participant rated `rating` solves a problem rated `problem_rating`) under the Elo model."""
    return 1.0 / (1.0 + 10.0 ** ((problem_rating - rating) / 400.0))


@dataclass(frozen=True)
class Outcome:
    """One rated problem: its difficulty rating and how many of the model's samples solved it."""

    problem_rating: float
    solved: int
    attempts: int


@dataclass(frozen=True)
class RatingEstimate:
    """rating: the maximum-likelihood rating; stderr: from the Fisher information (inf at a boundary);
    boundary: "" inside the range, else "low" (solved nothing) or "high" (solved everything); problems: the
    rated problems it used."""

    rating: float
    stderr: float
    boundary: str
    problems: int

    def as_dict(self) -> dict:
        return {"rating": self.rating, "stderr": self.stderr, "boundary": self.boundary, "problems": self.problems}


def _excess_solves(rating: float, outcomes: Sequence[Outcome]) -> float:
    """sum_i (s_i - n_i P_i(R)): positive while R is too low, decreasing in R."""
    return sum(o.solved - o.attempts * solve_probability(rating, o.problem_rating) for o in outcomes)


def fisher_information(rating: float, outcomes: Sequence[Outcome]) -> float:
    return LN10_OVER_400 ** 2 * sum(
        o.attempts * solve_probability(rating, o.problem_rating) * (1 - solve_probability(rating, o.problem_rating))
        for o in outcomes)


def estimate_rating(outcomes: Sequence[Outcome], bounds: tuple[float, float] = RATING_RANGE,
                    tolerance: float = 1e-6) -> RatingEstimate:
    """The maximum-likelihood rating over `bounds` (see the module docstring); needs at least one outcome."""
    for o in outcomes:
        if not 0 <= o.solved <= o.attempts or o.attempts < 1:
            raise ValueError(f"estimate_rating: need 0 <= solved <= attempts and attempts >= 1, got {o}")
    if not outcomes:
        raise ValueError("estimate_rating: no rated problems; the benchmark's records need metadata['rating']")
    low, high = bounds
    if _excess_solves(low, outcomes) <= 0:
        return RatingEstimate(low, math.inf, "low", len(outcomes))
    if _excess_solves(high, outcomes) >= 0:
        return RatingEstimate(high, math.inf, "high", len(outcomes))
    while high - low > tolerance:
        middle = (low + high) / 2
        if _excess_solves(middle, outcomes) > 0:
            low = middle
        else:
            high = middle
    rating = (low + high) / 2
    return RatingEstimate(rating, 1 / math.sqrt(fisher_information(rating, outcomes)), "", len(outcomes))


def rating_percentile(rating: float, participants: Mapping[int, int]) -> float:
    """Percent of participants rated below `rating` (those exactly at it count half); NaN without data.
    Ratings are integers: the estimate is rounded first."""
    rating = round(rating)
    total = sum(participants.values())
    if total == 0:
        return float("nan")
    below = sum(count for r, count in participants.items() if r < rating)
    tied = sum(count for r, count in participants.items() if r == rating)
    return 100.0 * (below + tied / 2) / total
