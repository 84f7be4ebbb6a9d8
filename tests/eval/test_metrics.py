"""pass@k, cons@k and their standard errors against values worked out by hand."""

import math

import pytest

from r1.eval import metrics


def test_pass_at_k_by_hand():
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert metrics.pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # n=5, c=2, k=3: 1 - C(3,3)/C(5,3) = 1 - 1/10
    assert metrics.pass_at_k(5, 2, 3) == pytest.approx(0.9)
    # k = 1 is the share correct
    assert metrics.pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    # more correct samples than misses can fill k: certain
    assert metrics.pass_at_k(4, 3, 2) == 1.0
    assert metrics.pass_at_k(4, 0, 4) == 0.0


def test_pass_at_k_matches_the_binomial_formula_for_large_n():
    n, c, k = 200, 7, 50
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert metrics.pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12)


def test_pass_at_k_refuses_impossible_counts():
    with pytest.raises(ValueError, match="0 <= c <= n"):
        metrics.pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        metrics.pass_at_k(3, 1, 4)


def test_pass_at_1_is_the_mean_of_question_means_with_stderr_over_questions():
    correct = [[True, True, False, False], [True, True, True, True], [False] * 4]
    score = metrics.pass_at_1(correct)
    assert score.value == pytest.approx(0.5)  # (0.5 + 1 + 0) / 3
    # sample std of (0.5, 1, 0) = 0.5; / sqrt(3)
    assert score.stderr == pytest.approx(0.5 / math.sqrt(3))


def test_pass_at_k_over_questions_and_the_short_question_error():
    correct = [[True, False, False, False], [False] * 4]
    assert metrics.pass_at(correct, 2).value == pytest.approx((0.5 + 0) / 2)
    with pytest.raises(ValueError, match="needs at least 8 samples"):
        metrics.pass_at(correct, 8)


def test_majority_vote_ties_go_to_the_first_seen_and_blanks_do_not_vote():
    assert metrics.majority_answer(["3", "4", "4", "3", None]) == "3"
    assert metrics.majority_answer([None, "", "7"]) == "7"
    assert metrics.majority_answer([None, None]) is None


def test_cons_at_k_by_hand():
    answers = [["5", "5", "6", None], ["1", "2", "2", "2"], [None, None, None, None]]
    correct = [[True, True, False, False], [True, False, False, False], [False] * 4]
    score = metrics.cons_at(answers, correct)
    # q1: majority 5 (correct); q2: majority 2 (wrong); q3: no answer (wrong)
    assert score.value == pytest.approx(1 / 3)


def test_pass_at_k_curve_uses_powers_of_two_up_to_the_samples():
    correct = [[True] + [False] * 5]
    curve = metrics.pass_at_k_curve(correct)
    assert sorted(curve) == [1, 2, 4, 6]
    assert curve[1] == pytest.approx(1 / 6) and curve[6] == 1.0
    assert curve[2] == pytest.approx(1 - math.comb(5, 2) / math.comb(6, 2))


def test_length_stats_and_percentiles():
    stats = metrics.length_stats([10, 20, 30, 40])
    assert stats == {"mean": 25.0, "median": 25.0, "p90": pytest.approx(37.0), "max": 40.0}
    assert math.isnan(metrics.length_stats([])["mean"])
