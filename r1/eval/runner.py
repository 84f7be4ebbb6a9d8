"""Evaluation, top to bottom: load a benchmark, prompt each question k times, verify every response, score.

    records -> prompts (message + frame) -> generation.generate(n=k) -> verifier.verify_batch -> sample cache
            -> scoring (pass@1, cons@k, pass@k, lengths, rating) -> results.json, report.md, plots

`generation` is anything with `generate(prompt_text, n=, sampling=, add_special_tokens=)` returning
`SampleOutput`s and `model_info()`: the generation service's client, or `InProcessGeneration` below over our
torch engine. `verifier` is anything with `verify_batch(items)`: the in-process `Verifier` or the verifier
service's client. Choices:
- Questions are the unit of work and of resumption: `concurrency` questions are in flight at once (each one
  request for k samples, which the engine batches); each is verified as soon as its samples are back and
  appended to the cache, so a killed run resumes where it stopped and draws the same samples (the seeds
  depend on the question's position only, see `question_seed`). When one question fails (the service went
  away), no new ones start, those in flight are still cached, and then the error is raised.
- A question whose prompt does not fit the model's context window scores k wrong samples with the verdict
  PROMPT_TOO_LONG (counted in the report's verdicts), as a truncated prompt would be a different question;
  every other refusal stops the run.
- Every benchmark's numbers go to `on_benchmark` as soon as it is scored (the evaluator's gauges), and the
  report files are rewritten after each benchmark, so a long multi-benchmark run shows results early.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from r1.data.benchmarks import codeforces_participant_ratings, load_benchmark
from r1.data.records import EvalRecord
from r1.engine.types import MAX_SAMPLES, SampleOutput, SamplingParams
from r1.errors import InvalidArgument
from r1.eval import report
from r1.eval.checks import check_for
from r1.eval.prompts import framed, message_builder
from r1.eval.protocol import EvalSettings, Resolved, resolve
from r1.eval.samples import GradedSample, QuestionResult, SampleCache
from r1.eval.scoring import score_benchmark
from r1.rewards.verdict import Verdict

log = logging.getLogger(__name__)
PROMPT_TOO_LONG = "PROMPT_TOO_LONG"


def question_seed(settings_seed: int, position: int) -> int:
    """Sample j of the question at `position` uses this + j (the engine adds j)."""
    return settings_seed + MAX_SAMPLES * position


def prompt_for(record: EvalRecord, resolved: Resolved, tokenizer=None) -> str:
    return framed(message_builder(resolved.prompt)(record), resolved.frame, tokenizer)


def grade(record: EvalRecord, outputs: Sequence[SampleOutput], verifier) -> QuestionResult:
    items = [replace(check_for(record, o.text), id=str(j)) for j, o in enumerate(outputs)]
    verdicts = {int(v.id): v.result for v in verifier.verify_batch(items)}
    return QuestionResult(record.id, tuple(
        GradedSample(text=o.text, tokens=len(o.token_ids), finish_reason=o.finish_reason.value,
                     reward=verdicts[j].reward, verdict=verdicts[j].verdict.value, extracted=verdicts[j].extracted,
                     correct=verdicts[j].verdict is Verdict.CORRECT, weight_version=o.weight_version)
        for j, o in enumerate(outputs)))


def answer_question(generation, verifier, resolved: Resolved, position: int, record: EvalRecord,
                    tokenizer=None) -> QuestionResult:
    sampling = SamplingParams(temperature=resolved.temperature, top_p=resolved.top_p,
                              max_tokens=resolved.max_tokens, seed=question_seed(resolved.seed, position))
    try:
        outputs = generation.generate(prompt_for(record, resolved, tokenizer), n=resolved.k, sampling=sampling,
                                      add_special_tokens=resolved.frame != "chat")  # a chat template has its bos
    except InvalidArgument as e:
        if e.field != "prompt" or "context window" not in e.message:
            raise
        log.warning("%s %s: %s; scored as %d wrong samples", resolved.benchmark, record.id, e.message, resolved.k)
        return QuestionResult(record.id, tuple(
            GradedSample(text="", tokens=0, finish_reason=PROMPT_TOO_LONG, reward=0.0, verdict=PROMPT_TOO_LONG,
                         extracted="", correct=False) for _ in range(resolved.k)))
    return grade(record, outputs, verifier)


def run_benchmark(name: str, generation, verifier, settings: EvalSettings, output: Path, *, source: str | None,
                  tokenizer=None, fresh: bool = False, progress: bool = True) -> dict:
    resolved = resolve(name, settings)
    records = load_benchmark(name, source, data_dir=settings.data_dir, limit=settings.limit)
    info = generation.model_info()
    header = {**resolved.fingerprint(), "source": source or "default", "model": info.model_id,
              "weight_version": info.weight_version}
    cache = SampleCache(output / "samples" / f"{name}.jsonl", header, fresh=fresh)
    cached = sum(r.id in cache.done for r in records)
    todo = [(position, r) for position, r in enumerate(records) if r.id not in cache.done]
    started = time.perf_counter()
    with ThreadPoolExecutor(settings.concurrency, thread_name_prefix=f"r1-eval-{name}") as pool, \
            tqdm(total=len(records), initial=cached, desc=name, unit="q", disable=not progress) as bar:
        futures = [pool.submit(answer_question, generation, verifier, resolved, position, record, tokenizer)
                   for position, record in todo]
        failure: BaseException | None = None
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    if failure is None:  # stop starting questions; keep what the ones in flight finish
                        failure = future.exception()
                        for pending in futures:
                            pending.cancel()
                    continue
                cache.append(future.result())
                bar.update()
        except BaseException:  # Ctrl-C: the questions already cached stay cached
            for future in futures:
                future.cancel()
            raise
        if failure is not None:
            raise failure
    participants = codeforces_participant_ratings(settings.data_dir) if resolved.rated else None
    return score_benchmark(resolved, records, cache.done, time.perf_counter() - started, cached, participants)


def evaluate(benchmarks: Sequence[str], generation, verifier, settings: EvalSettings, output: str | Path, *,
             sources: dict[str, str] | None = None, tokenizer=None, fresh: bool = False, progress: bool = True,
             target: str = "in-process", on_benchmark: Callable[[str, dict, object], None] | None = None) -> dict:
    """Runs each benchmark in turn and returns results.json's content (also written, with report.md and the
    plots, into `output`)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    info = generation.model_info()
    results = {"model": info.model_id, "checkpoint": info.checkpoint, "backend": info.backend,
               "weight_version": info.weight_version, "target": target, "benchmarks": {}}
    for name in benchmarks:
        section = run_benchmark(name, generation, verifier, settings, output, source=(sources or {}).get(name),
                                tokenizer=tokenizer, fresh=fresh, progress=progress)
        results["benchmarks"][name] = section
        log.info("%s: pass@1 %.4f over %d questions", name, section["pass@1"]["value"], section["questions"])
        if on_benchmark is not None:
            on_benchmark(name, section, info)
        report.write(results, output)
    return results


class InProcessGeneration:
    """Our torch engine in this process, behind the client's text-prompt `generate`: for `r1 eval --model`."""

    def __init__(self, model: str, spec_tokens: int = 0, max_num_seqs: int = 64, threads: int = 0):
        from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
        from r1.rl.grpo import LocalGeneration

        engine = TorchEngine(TorchEngineConfig(model=model, spec_tokens=spec_tokens, max_num_seqs=max_num_seqs,
                                               threads=threads))
        self._local = LocalGeneration(engine)
        self._engine = engine

    def generate(self, prompt: str, *, n: int = 1, sampling: SamplingParams = SamplingParams(),
                 add_special_tokens: bool = True) -> list[SampleOutput]:
        return self._local.generate(self._engine.tokenize(prompt, add_special_tokens), n=n, sampling=sampling)

    def model_info(self):
        return self._local.model_info()

    @property
    def tokenizer(self):
        return self._engine.loaded.tokenizer

    def close(self) -> None:
        self._local.close()

    def __enter__(self) -> InProcessGeneration:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
