"""Scoring graded samples into a benchmark section, and the report's Codeforces paragraph."""

import pytest

from r1.data.records import EvalRecord
from r1.eval.protocol import EvalSettings, resolve
from r1.eval.report import markdown
from r1.eval.samples import GradedSample, QuestionResult
from r1.eval.scoring import score_benchmark


def sample(correct: bool, tokens: int = 10, finish: str = "stop") -> GradedSample:
    return GradedSample("x", tokens, finish, float(correct), "CORRECT" if correct else "WRONG", "", correct)


def rated(n_problems: int, ratings=None):
    records = [EvalRecord(f"p{i}", "codeforces", "code", "statement",
                          metadata={"problem_id": f"19{i}A", **({"rating": ratings[i]} if ratings else {})})
               for i in range(n_problems)]
    return records


def test_a_rated_set_gets_an_elo_rating_and_percentile():
    records = rated(2, ratings=[1200, 1800])
    results = {"p0": QuestionResult("p0", (sample(True), sample(False))),
               "p1": QuestionResult("p1", (sample(True), sample(False, 50, "length")))}
    section = score_benchmark(resolve("codeforces", EvalSettings(k=2)), records, results, 1.0, 0,
                              participants={1000: 1, 1500: 2, 2000: 1})
    rating = section["codeforces"]
    assert rating["rating"] == pytest.approx(1500, abs=0.01)
    assert rating["percentile"] == pytest.approx(50.0)
    assert section["cons@k"] is None  # code: nothing to vote with
    assert section["truncated_share"] == 0.25
    assert section["per_question"][0]["problem_id"] == "190A"
    text = markdown({"model": "m", "weight_version": 1, "target": "t", "backend": "torch",
                     "benchmarks": {"codeforces": section}})
    assert "Codeforces rating: 1500 ± " in text and "percentile 50.0" in text
    assert "not a contest-standings rating" in rating["method"]


def test_without_difficulty_ratings_the_report_says_why():
    records = rated(1)
    section = score_benchmark(resolve("codeforces", EvalSettings(k=1)), records,
                              {"p0": QuestionResult("p0", (sample(False),))}, 1.0, 0)
    assert section["codeforces"]["rating"] is None
    text = markdown({"model": "m", "weight_version": 0, "target": "t", "backend": "torch",
                     "benchmarks": {"codeforces": section}})
    assert "Codeforces rating: not estimated: no record has a difficulty rating" in text


def test_missing_questions_are_an_error():
    with pytest.raises(ValueError, match="have no samples"):
        score_benchmark(resolve("math500", EvalSettings()), [EvalRecord("a", "math500", "math", "q", "1")], {}, 0, 0)
