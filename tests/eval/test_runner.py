"""The evaluation workflow over a scripted generation side and the real in-process verifier: the numbers it
writes, resumption after a crash, and the refusal to mix samples drawn under other settings."""

from __future__ import annotations

import json
import threading

import pytest

from r1.data.benchmarks import load_benchmark
from r1.engine.types import FinishReason, ModelInfo, SampleOutput
from r1.errors import FailedPrecondition
from r1.eval.protocol import EvalSettings
from r1.eval.runner import evaluate, question_seed
from r1.rewards.verifier import Verifier, VerifierConfig

LIMIT = 6


class ScriptedGeneration:
    """Answers question i's sample j correctly when j < i (so question i has pass@1 min(i, k) / k), records
    every call, and can be told to fail after some calls (a crash mid-run)."""

    def __init__(self, records, fail_after: int | None = None, weight_version: int = 3):
        self.answers = {r.problem: r.answer for r in records}
        self.order = [r.problem for r in records]
        self.calls: list[tuple[str, int, int]] = []
        self.fail_after = fail_after
        self.weight_version = weight_version
        self._lock = threading.Lock()

    def model_info(self) -> ModelInfo:
        return ModelInfo("scripted", "none", "test", self.weight_version, (0,), None, None, 4096, 100)

    def generate(self, prompt, *, n, sampling, add_special_tokens=True):
        problem = next(p for p in self.order if p in prompt)
        i = self.order.index(problem)
        with self._lock:
            if self.fail_after is not None and len(self.calls) >= self.fail_after:
                raise RuntimeError("generation went away")
            self.calls.append((problem, n, sampling.seed))
        texts = [f"so the answer is \\boxed{{{self.answers[problem]}}}" if j < i else "\\boxed{-12345}"
                 for j in range(n)]
        return [SampleOutput(j, FinishReason.STOP, tuple(range(10 + j)), t, weight_version=self.weight_version)
                for j, t in enumerate(texts)]


@pytest.fixture(scope="module")
def records():
    return load_benchmark("math500", limit=LIMIT)


@pytest.fixture(scope="module")
def verifier():
    with Verifier(VerifierConfig(workers=2, math_workers=1)) as v:
        yield v


SETTINGS = EvalSettings(k=4, limit=LIMIT, concurrency=3, max_tokens=64)


def test_scores_written_match_the_script(tmp_path, records, verifier):
    generation = ScriptedGeneration(records)
    results = evaluate(["math500"], generation, verifier, SETTINGS, tmp_path, progress=False)
    section = results["benchmarks"]["math500"]
    expected = [min(i, 4) / 4 for i in range(LIMIT)]  # 0, .25, .5, .75, 1, 1
    assert section["pass@1"]["value"] == pytest.approx(sum(expected) / LIMIT)
    assert [row["pass@1"] for row in section["per_question"]] == expected
    # majority: question i has i right answers first, then 4 - i copies of one wrong answer; question 2's tie
    # goes to the answer seen first (the right one), so questions 2..5 are right by vote
    assert section["cons@k"]["value"] == pytest.approx(4 / LIMIT)
    assert section["pass@k"]["4"] == pytest.approx(5 / LIMIT)
    assert section["weight_versions"] == [3] and section["questions"] == LIMIT
    assert section["lengths"]["all"]["max"] == 13
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["benchmarks"]["math500"]["pass@1"] == section["pass@1"]
    report = (tmp_path / "report.md").read_text()
    assert "| math500 | 6 | 4 |" in report
    assert (tmp_path / "pass_at_k.png").stat().st_size > 0 and (tmp_path / "lengths.png").stat().st_size > 0
    # seeds depend on the question's position only
    assert sorted(seed for _, _, seed in generation.calls) == [question_seed(0, i) for i in range(LIMIT)]


def test_a_crashed_run_resumes_with_the_same_numbers_and_only_the_missing_questions(tmp_path, records, verifier):
    reference = evaluate(["math500"], ScriptedGeneration(records), verifier, SETTINGS, tmp_path / "whole",
                         progress=False)
    crashing = ScriptedGeneration(records, fail_after=2)
    with pytest.raises(RuntimeError, match="went away"):
        evaluate(["math500"], crashing, verifier, SETTINGS, tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "samples" / "math500.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2  # header + the two questions that finished
    second = ScriptedGeneration(records)
    resumed = evaluate(["math500"], second, verifier, SETTINGS, tmp_path / "run", progress=False)
    assert len(second.calls) == LIMIT - 2
    ours, theirs = resumed["benchmarks"]["math500"], reference["benchmarks"]["math500"]
    assert ours["questions_from_cache"] == 2
    for key in ("pass@1", "cons@k", "pass@k", "per_question", "lengths"):
        assert ours[key] == theirs[key]


def test_a_torn_last_line_is_dropped_and_redone(tmp_path, records, verifier):
    evaluate(["math500"], ScriptedGeneration(records), verifier, SETTINGS, tmp_path, progress=False)
    path = tmp_path / "samples" / "math500.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the process died while writing the last question
    generation = ScriptedGeneration(records)
    evaluate(["math500"], generation, verifier, SETTINGS, tmp_path, progress=False)
    assert len(generation.calls) == 1
    assert len(path.read_text().splitlines()) == 1 + LIMIT


def test_samples_from_other_settings_or_another_model_are_never_mixed_in(tmp_path, records, verifier):
    evaluate(["math500"], ScriptedGeneration(records), verifier, SETTINGS, tmp_path, progress=False)
    with pytest.raises(FailedPrecondition, match=r"temperature: cached 0.6, now 1.0.*--fresh"):
        evaluate(["math500"], ScriptedGeneration(records), verifier,
                 EvalSettings(k=4, limit=LIMIT, max_tokens=64, temperature=1.0), tmp_path, progress=False)
    with pytest.raises(FailedPrecondition, match="weight_version: cached 3, now 4"):
        evaluate(["math500"], ScriptedGeneration(records, weight_version=4), verifier, SETTINGS, tmp_path,
                 progress=False)
    fresh = ScriptedGeneration(records, weight_version=4)
    evaluate(["math500"], fresh, verifier, SETTINGS, tmp_path, progress=False, fresh=True)
    assert len(fresh.calls) == LIMIT
