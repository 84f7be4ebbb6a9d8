"""From graded samples to a benchmark's numbers: pass@1, cons@k, the pass@k curve, lengths, verdicts, the
per-question table and, for rated problem sets, a Codeforces rating.

Pure functions over `QuestionResult`s (the sample cache's lines) and the benchmark's records, so a resumed run
scores exactly what an uninterrupted one would. Choices:
- cons@k is reported for answers that can be voted on (math, multiple choice); code has no extracted answer
  to vote with, so its cons@k is None (pass@k covers "any sample right").
- A response cut off at max_tokens counts as written (usually wrong); the share of such responses is reported,
  since a high share means the token budget, not the model, set the score.
- The rating uses only questions whose record carries metadata["rating"]; when none does (the offline
  Codeforces files have no difficulty ratings) the result says so instead of inventing one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from r1.data.records import EvalRecord
from r1.eval import metrics
from r1.eval.codeforces import Outcome, estimate_rating, rating_percentile
from r1.eval.protocol import Resolved
from r1.eval.samples import QuestionResult

TABLE_METADATA = ("subject", "level", "rating", "problem_id", "domain")
NO_RATINGS = ("no record has a difficulty rating (metadata['rating']); put the Codeforces API's "
              "problemset.problems response at <data_dir>/codeforces/codeforces_problem_ratings.json")


def question_row(record: EvalRecord, result: QuestionResult, votable: bool) -> dict:
    correct = [s.correct for s in result.samples]
    answers = [s.extracted or None for s in result.samples]
    row = {"id": record.id, "samples": len(correct), "correct": sum(correct),
           "pass@1": metrics.mean([float(c) for c in correct]),
           "mean_tokens": metrics.mean([float(s.tokens) for s in result.samples])}
    if votable:
        row["majority_answer"] = metrics.majority_answer(answers)
        row["cons_correct"] = metrics.consensus_correct(answers, correct)
    row.update({key: record.metadata[key] for key in TABLE_METADATA if key in record.metadata})
    return row


def codeforces_rating(records: Sequence[EvalRecord], results: Mapping[str, QuestionResult],
                      participants: Mapping[int, int]) -> dict:
    outcomes = [Outcome(float(r.metadata["rating"]), sum(s.correct for s in results[r.id].samples),
                        len(results[r.id].samples))
                for r in records if r.metadata.get("rating") is not None and results[r.id].samples]
    if not outcomes:
        return {"rating": None, "reason": NO_RATINGS}
    estimate = estimate_rating(outcomes)
    return {**estimate.as_dict(), "percentile": rating_percentile(estimate.rating, participants),
            "method": "maximum likelihood under the Elo model over the problems' difficulty ratings "
                      "(r1/eval/codeforces.py); not a contest-standings rating"}


def score_benchmark(resolved: Resolved, records: Sequence[EvalRecord], results: Mapping[str, QuestionResult],
                    seconds: float, cached: int, participants: Mapping[int, int] | None = None) -> dict:
    """The benchmark's section of results.json; `results` must hold every record's id."""
    missing = [r.id for r in records if r.id not in results]
    if missing:
        raise ValueError(f"score_benchmark: {len(missing)} question(s) have no samples, e.g. {missing[0]!r}")
    ordered = [results[r.id] for r in records]
    correct = [[s.correct for s in q.samples] for q in ordered]
    answers = [[s.extracted or None for s in q.samples] for q in ordered]
    samples = [s for q in ordered for s in q.samples]
    votable = bool(records) and records[0].kind != "code"
    section = {
        "settings": {**resolved.fingerprint(), "limit": resolved.limit},
        "questions": len(records),
        "samples": len(samples),
        "pass@1": metrics.pass_at_1(correct).as_dict(),
        "cons@k": metrics.cons_at(answers, correct).as_dict() if votable else None,
        "pass@k": {str(k): v for k, v in metrics.pass_at_k_curve(correct).items()},
        "lengths": {"all": metrics.length_stats([s.tokens for s in samples]),
                    "correct": metrics.length_stats([s.tokens for s in samples if s.correct]),
                    "wrong": metrics.length_stats([s.tokens for s in samples if not s.correct])},
        "truncated_share": metrics.mean([float(s.finish_reason == "length") for s in samples]),
        "verdicts": dict(Counter(s.verdict for s in samples).most_common()),
        "weight_versions": sorted({s.weight_version for s in samples}),
        "seconds": seconds,
        "questions_from_cache": cached,
        "per_question": [question_row(r, q, votable) for r, q in zip(records, ordered)],
    }
    if resolved.rated:
        section["codeforces"] = codeforces_rating(records, results, participants or {})
    return section
