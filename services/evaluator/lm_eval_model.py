"""An lm-evaluation-harness model backed by the generation service, so that any generative lm-eval task runs
against whatever the service serves (the teacher, a student, vLLM or SGLang behind it).

    r1 lm-eval --model r1 --model_args target=localhost:50051 --tasks gsm8k --limit 10
    lm_eval.simple_evaluate(model="r1", model_args="target=localhost:50051", tasks=[...])   # after import

Importing this module registers the model under the name "r1" (`register_model`); `main(argv)` imports it,
then runs lm-eval's own command line (`lm_eval.__main__.cli_evaluate`) with argv. lm-eval 0.4.13 discovers
models only through its registry, never through Python entry points, so a bare `lm_eval --model r1` does not
find it: use `r1 lm-eval` (or `simple_evaluate` after importing this module).

model_args (comma-separated `key=value`, or `--model_args key=value key=value`):
    target          host:port of the generation service. Required.
    token           bearer token. lm-eval writes model_args into its results files, so prefer token_file or
                    the R1_TOKEN environment variable (used when neither is given).
    token_file      file holding the token (a mounted Kubernetes secret).
    tls_ca          PEM CA bundle: talk TLS to target (default: plaintext).
    timeout         seconds per Generate call (default: none).
    concurrency     Generate calls in flight at once (default 8); the service batches them continuously.
    max_gen_toks    tokens per answer when the task does not say (default 256, lm-eval's default).
    seed            sampling seed when the task does not give one (default: none, nondeterministic).
    tokenizer       directory (or hub id, for users with a hub cache) of the served model's tokenizer; needed
                    only for --apply_chat_template, which renders prompts with its chat template.
    think_end_token e.g. "</think>": the answer is the text after its last occurrence, and the task's stop
                    strings are applied to the answer only (not sent to the server, where they would cut the
                    reasoning short), as lm-eval's vLLM and HF backends do.
batch_size, max_batch_size, device and trust_remote_code, which lm-eval passes to every model, are ignored.

Choices:
- Prompts go as text and are tokenized by the server, which adds BOS; a prompt that already starts with the
  tokenizer's BOS text (a rendered chat template) is sent without special tokens, so BOS is not doubled. No
  chat template is applied unless lm-eval asks for one (--apply_chat_template, which needs `tokenizer`).
- Generation kwargs are normalised by lm-eval's own `normalize_gen_kwargs` (max_gen_toks and its aliases;
  do_sample=False or no temperature means greedy). `until` goes to the server as stop strings (at most 16,
  the proto's limit; the rest are applied here) and the text is truncated at the earliest stop string here
  as well, as lm-eval's other backends do; EOS needs no stop string: the server stops on it. Other kwargs map
  to SamplingParams fields by name (temperature, top_p, top_k, min_p, seed, min_tokens, ignore_eos,
  repetition_penalty, presence_penalty, frequency_penalty); anything else is an error naming the kwarg, as
  transformers' generate() raises on unknown kwargs under the HF backend. All requests are checked before any
  is sent.
- Identical requests (same context and kwargs: a task's `repeats`, e.g. pass@k) are one Generate call with n
  samples, so the prompt is processed once and, with a seed, the samples differ (sample i uses seed + i)
  instead of being k copies of one seeded sample. Greedy ones are generated once and copied.
- Calls run concurrently on a thread pool (`concurrency`), results keep the request order; the progress bar
  and `cache_hook.add_partial("generate_until", ...)` are as in lm-eval's backends. The first failure stops
  what has not started and is raised with a note naming the request.
- loglikelihood and loglikelihood_rolling raise NotImplementedError: the generation proto returns the
  log-probabilities of sampled tokens only, never of prompt tokens, and scoring a continuation needs those.

Not done: no client-side truncation of over-long prompts (the server refuses a prompt that fills its context
window, with a message giving both lengths); no multimodal input.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401 (lm-eval's own names first: get_model adds them to an empty registry only)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import normalize_gen_kwargs, postprocess_generated_text
from tqdm import tqdm

from r1.engine.types import MAX_SAMPLES, MAX_STOP_STRINGS, SamplingParams
from r1.errors import InvalidArgument
from services.generation.client import GenerationClient

log = logging.getLogger(__name__)

MODEL_NAME = "r1"
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_GEN_TOKS = 256
# Generation kwargs taken as SamplingParams fields of the same name, with the type each is cast to.
SAMPLING_KWARGS: dict[str, type] = {
    "temperature": float, "top_p": float, "top_k": int, "min_p": float, "seed": int, "min_tokens": int,
    "ignore_eos": bool, "repetition_penalty": float, "presence_penalty": float, "frequency_penalty": float,
}
HANDLED_KWARGS = ("until", "max_gen_toks", "do_sample")  # after normalize_gen_kwargs (aliases folded in)
IGNORED_MODEL_ARGS = ("batch_size", "max_batch_size", "device", "trust_remote_code")  # lm-eval's, for all models
NO_PROMPT_LOGPROBS = (
    "the r1 generation service returns log-probabilities of generated tokens only, never of prompt tokens "
    "(GenerateRequest.return_logprobs in protos/r1/generation/v1/generation.proto), so {kind} requests "
    "(multiple-choice tasks scored by log-likelihood, perplexity tasks) cannot run against it; use a "
    "generate_until task instead (output_type: generate_until, e.g. gsm8k, gpqa_diamond_cot_zeroshot, "
    "mmlu_generative)")


@dataclass(frozen=True)
class Job:
    """One Generate call: the indices of the identical requests it answers, and what to send."""

    indices: tuple[int, ...]
    context: str
    sampling: SamplingParams  # stop: what the server applies
    until: tuple[str, ...]  # every stop string, applied here
    add_special_tokens: bool


@register_model(MODEL_NAME)
class GenerationServiceLM(LM):
    """lm-eval's LM over `GenerationClient`; see the module docstring for the model_args."""

    def __init__(self, target: str = "", token: str = "", token_file: str = "", tls_ca: str = "",
                 timeout: float | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 max_gen_toks: int = DEFAULT_MAX_GEN_TOKS, seed: int | None = None, tokenizer: str = "",
                 think_end_token: str = "", **others: Any):
        super().__init__()
        unknown = sorted(set(others) - set(IGNORED_MODEL_ARGS))
        if unknown:
            raise ValueError(f"model {MODEL_NAME!r}: unknown model_args {', '.join(unknown)}; valid: target, "
                             "token, token_file, tls_ca, timeout, concurrency, max_gen_toks, seed, tokenizer, "
                             "think_end_token")
        if not target:
            raise ValueError(f"model {MODEL_NAME!r} needs the generation service's address: "
                             "--model_args target=host:port")
        self.concurrency = _positive_int("concurrency", concurrency)
        self.max_gen_toks = _positive_int("max_gen_toks", max_gen_toks)
        self.seed = None if seed is None else int(seed)
        self.think_end_token = str(think_end_token)
        self._tokenizer_path = str(tokenizer)
        self._tokenizer = None
        if self._tokenizer_path:
            from r1.model.tokenizer import load_tokenizer

            self._tokenizer = load_tokenizer(self._tokenizer_path)
        token = str(token) or (Path(token_file).read_text().strip() if token_file else os.environ.get("R1_TOKEN", ""))
        self._client = GenerationClient(str(target), token=token, timeout=None if timeout is None else float(timeout),
                                        root_certificates=Path(tls_ca).read_bytes() if tls_ca else None)
        self.model_info = self._client.model_info()  # fails here, with the service's error, if it is unreachable
        log.info("lm-eval model %r: %s (%s, %s backend, weights v%d) at %s", MODEL_NAME, self.model_info.model_id,
                 self.model_info.architecture, self.model_info.backend, self.model_info.weight_version, target)

    # --------------------------------------------------------------------------------------- generation

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        args = [request.args for request in requests]
        jobs = self._jobs(args)
        results: list[str | None] = [None] * len(args)
        with tqdm(total=len(args), disable=disable_tqdm or self.rank != 0,
                  desc="Running generate_until requests") as bar, \
                ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="r1-lm-eval") as pool:
            futures: dict[Future, Job] = {pool.submit(self._run, job): job for job in jobs}
            try:
                for future in as_completed(futures):
                    job = futures[future]
                    for index, text in zip(job.indices, future.result(), strict=True):
                        results[index] = text
                        self.cache_hook.add_partial("generate_until", args[index], text)
                    bar.update(len(job.indices))
            except Exception as e:
                for pending in futures:
                    pending.cancel()
                e.add_note(f"while generating for lm-eval request {job.indices[0]} (context {job.context[:80]!r})")
                raise
        return results  # type: ignore[return-value]  (every index is filled once the loop ends)

    def _jobs(self, args: Sequence[tuple[str, dict]]) -> list[Job]:
        """The Generate calls for these (context, gen_kwargs) requests; identical requests share one."""
        groups: dict[tuple[str, str], list[int]] = {}
        for index, (context, gen_kwargs) in enumerate(args):
            groups.setdefault((context, json.dumps(gen_kwargs, sort_keys=True, default=str)), []).append(index)
        jobs = []
        for indices in groups.values():
            context, gen_kwargs = args[indices[0]]
            sampling, until = self.sampling(gen_kwargs)
            for start in range(0, len(indices), MAX_SAMPLES):  # seeds continue across the chunks of one group
                seed = sampling.seed + start if sampling.seed is not None and not sampling.greedy else sampling.seed
                jobs.append(Job(tuple(indices[start:start + MAX_SAMPLES]), context, replace(sampling, seed=seed), until,
                                add_special_tokens=not self._starts_with_bos(context)))
        return jobs

    def sampling(self, gen_kwargs: dict) -> tuple[SamplingParams, tuple[str, ...]]:
        """(what the server gets, every stop string) for one request's gen_kwargs; ValueError when they cannot
        be honoured."""
        if not isinstance(gen_kwargs, dict):
            raise ValueError(f"generation kwargs must be a dict, got {type(gen_kwargs).__name__}: {gen_kwargs!r}")
        kwargs = dict(normalize_gen_kwargs(gen_kwargs, default_max_gen_toks=self.max_gen_toks))
        unknown = sorted(set(kwargs) - set(SAMPLING_KWARGS) - set(HANDLED_KWARGS))
        if unknown:
            raise ValueError(f"model {MODEL_NAME!r}: generation kwargs {', '.join(unknown)} are not supported "
                             f"by the generation service; supported: {', '.join(HANDLED_KWARGS)}, "
                             f"max_new_tokens / max_tokens (aliases of max_gen_toks), {', '.join(SAMPLING_KWARGS)}")
        until = kwargs["until"]
        if not all(isinstance(s, str) for s in until):
            raise ValueError(f"generation kwarg until must be strings, got {until!r}")
        until = tuple(dict.fromkeys(s for s in until if s))  # '' stops nothing (lm-eval skips it too)
        fields = {name: cast(kwargs[name]) for name, cast in SAMPLING_KWARGS.items() if kwargs.get(name) is not None}
        if not kwargs.get("do_sample"):  # normalize_gen_kwargs leaves temperature unset when neither is given
            fields["temperature"] = 0.0
        fields.setdefault("seed", self.seed)
        server_stop = () if self.think_end_token else until[:MAX_STOP_STRINGS]
        if len(until) > MAX_STOP_STRINGS and not self.think_end_token:
            log.warning("%d stop strings: the server applies the first %d, the rest are applied to the text",
                        len(until), MAX_STOP_STRINGS)
        sampling = SamplingParams(max_tokens=int(kwargs["max_gen_toks"]), stop=server_stop, **fields)
        try:
            sampling.validate()
        except InvalidArgument as e:
            raise ValueError(f"generation kwargs {gen_kwargs!r}: {e}") from None
        return sampling, until

    def _run(self, job: Job) -> list[str]:
        """The answers to one job, one per index: the text truncated at the earliest stop string (after the
        reasoning, with think_end_token)."""
        n = 1 if job.sampling.greedy else len(job.indices)
        outputs = self._client.generate(job.context, n=n, sampling=job.sampling,
                                        add_special_tokens=job.add_special_tokens)
        texts = [postprocess_generated_text(o.text, list(job.until), self.think_end_token or None) for o in outputs]
        return texts * len(job.indices) if n == 1 else texts

    # ------------------------------------------------------------------------------ log-likelihood: no

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(NO_PROMPT_LOGPROBS.format(kind="loglikelihood"))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(NO_PROMPT_LOGPROBS.format(kind="loglikelihood_rolling"))

    # ----------------------------------------------------------------------------------- chat templates

    @property
    def tokenizer_name(self) -> str:
        """Fingerprints lm-eval's request cache when a chat template is applied."""
        return self._chat_tokenizer().name_or_path.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if not chat_template:
            return None
        if isinstance(chat_template, str):
            raise ValueError(f"model {MODEL_NAME!r} applies the tokenizer's own chat template; named templates "
                             f"({chat_template!r}) are not supported: pass --apply_chat_template without a name")
        return self._chat_tokenizer().get_chat_template()

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self._chat_tokenizer().apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt)

    def _chat_tokenizer(self):
        if self._tokenizer is None:
            raise ValueError(f"model {MODEL_NAME!r} sends prompts as raw text; to apply a chat template, name the "
                             "served model's tokenizer: --model_args target=...,tokenizer=<checkpoint directory>")
        return self._tokenizer

    def _starts_with_bos(self, context: str) -> bool:
        bos = getattr(self._tokenizer, "bos_token", None)
        return bool(bos) and context.startswith(bos)

    # ------------------------------------------------------------------------------------------ results

    def get_model_info(self) -> dict:
        """Merged into lm-eval's results["config"], so a result names the weights that produced it."""
        info = self.model_info
        return {"model_id": info.model_id, "model_architecture": info.architecture, "model_backend": info.backend,
                "model_weight_version": info.weight_version, "model_checkpoint": info.checkpoint,
                "model_dtype": info.dtype, "model_num_parameters": info.parameter_count,
                "model_max_context_tokens": info.max_context_tokens}

    def close(self) -> None:
        self._client.close()


def _positive_int(name: str, value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"model {MODEL_NAME!r}: {name} must be >= 1, got {value!r}")
    return number


def main(argv: list[str]) -> int:
    """lm-eval's command line (`lm-eval [run|ls|validate] ...`, `run` assumed as lm-eval does) with this
    model registered; its exit status."""
    from lm_eval.__main__ import cli_evaluate

    saved = sys.argv
    sys.argv = ["lm-eval", *argv]  # lm-eval's HarnessCLI reads sys.argv itself; restored below
    try:
        cli_evaluate()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    return 0
