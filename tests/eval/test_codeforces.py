"""The Codeforces Elo estimator: hand-computed probabilities, boundaries, and recovery of a known rating."""

import math
import random

import pytest

from r1.eval.codeforces import Outcome, estimate_rating, rating_percentile, solve_probability


def test_solve_probability_by_hand():
    assert solve_probability(1500, 1500) == pytest.approx(0.5)
    assert solve_probability(1900, 1500) == pytest.approx(1 / (1 + 10 ** -1))  # 400 above: 10:1 odds
    assert solve_probability(1100, 1500) == pytest.approx(1 / 11)


def test_two_symmetric_problems_solved_half_the_time_put_the_rating_at_their_midpoint():
    # symmetric problems at 1200 and 1800, each solved 1 time in 2: the root is 1500
    estimate = estimate_rating([Outcome(1200, 1, 2), Outcome(1800, 1, 2)])
    assert estimate.rating == pytest.approx(1500, abs=1e-3)
    p = solve_probability(1500, 1200)
    info = (math.log(10) / 400) ** 2 * 2 * 2 * p * (1 - p)
    assert estimate.stderr == pytest.approx(1 / math.sqrt(info))


@pytest.mark.parametrize("true_rating", [900, 1500, 2100])
def test_recovers_a_known_rating_from_simulated_outcomes_within_50(true_rating):
    rng = random.Random(true_rating)
    ratings = [800 + 100 * (i % 28) for i in range(408)]  # 800..3500, like the benchmark's spread
    outcomes = []
    for r in ratings:
        solved = sum(rng.random() < solve_probability(true_rating, r) for _ in range(8))
        outcomes.append(Outcome(r, solved, 8))
    estimate = estimate_rating(outcomes)
    assert abs(estimate.rating - true_rating) <= 50
    assert estimate.stderr < 50 and estimate.boundary == ""


def test_all_or_nothing_pins_the_rating_to_the_range_and_says_so():
    nothing = estimate_rating([Outcome(800, 0, 4), Outcome(1200, 0, 4)])
    assert nothing.boundary == "low" and math.isinf(nothing.stderr)
    everything = estimate_rating([Outcome(800, 4, 4)], bounds=(0, 4000))
    assert everything.boundary == "high" and everything.rating == 4000


def test_bad_outcomes_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="no rated problems"):
        estimate_rating([])
    with pytest.raises(ValueError, match="solved <= attempts"):
        estimate_rating([Outcome(1000, 5, 4)])


def test_percentile_counts_ties_as_half():
    participants = {1000: 10, 1500: 20, 2000: 10}
    assert rating_percentile(1500, participants) == pytest.approx(100 * (10 + 10) / 40)
    assert rating_percentile(3000, participants) == 100.0
    assert math.isnan(rating_percentile(1500, {}))
