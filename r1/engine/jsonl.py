"""`r1 generate`'s JSONL lines: parse and check each one, run them through the torch engine, write the records.

One JSON object per line: `"prompt"` (text, tokenized by the served tokenizer) or `"prompt_ids"` (token ids,
verbatim), optional `"n"` and any `SamplingParams` field (`SAMPLING_KEYS`), other keys passed through. A line
that cannot be read is not fatal: it becomes an error record naming its line and field (`line 3: top_p: must
be in (0, 1] ...`), as `r1 verify` does. Output records are the input object plus `"samples"` (index,
finish_reason, text, token_ids, matched_stop, weight_version, speculative counts, and logprobs on request).
The CLI sends the same parsed lines to a generation service with `--target` instead of `generate_in_process`.
"""

from __future__ import annotations

import asyncio
import json

from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
from r1.engine.types import GenerationRequest, SampleOutput, SamplingParams
from r1.errors import InvalidArgument
from r1.rewards.jsonl import clean_strings

# the keys a line may set, and the JSON type each must have
SAMPLING_KEYS = {"temperature": "number", "top_p": "number", "top_k": "integer", "min_p": "number",
                 "max_tokens": "integer", "seed": "integer", "stop": "strings", "stop_token_ids": "integers",
                 "ignore_eos": "boolean", "min_tokens": "integer", "repetition_penalty": "number",
                 "presence_penalty": "number", "frequency_penalty": "number", "n": "integer"}


def parse_line(line_no: int, text: str, defaults: dict) -> dict:
    """{"line", "record", "prompt", "n", "sampling"} for a line, or {"line", "record", "error"}; never raises."""
    job: dict = {"line": line_no, "record": None}
    try:
        record = clean_strings(json.loads(text))
        if not isinstance(record, dict):
            raise InvalidArgument("line", f"expected a JSON object, got {type(record).__name__}")
        job["record"] = record
        if ("prompt" in record) == ("prompt_ids" in record):
            raise InvalidArgument("prompt", "give exactly one of \"prompt\" (text) and \"prompt_ids\" (token ids)")
        prompt = record.get("prompt", record.get("prompt_ids"))
        if "prompt" in record and not (isinstance(prompt, str) and prompt):
            raise InvalidArgument("prompt", "must be a non-empty string")
        if "prompt_ids" in record and not (isinstance(prompt, list) and prompt and all(
                isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2 ** 31 for t in prompt)):
            raise InvalidArgument("prompt_ids", "must be a non-empty list of token ids (integers >= 0)")
        settings = {**defaults, **{k: sampling_value(k, record[k]) for k in SAMPLING_KEYS if k in record}}
        n = settings.pop("n")
        if n < 1:
            raise InvalidArgument("n", f"must be >= 1, got {n}")
        try:
            sampling = SamplingParams(**settings)
            sampling.validate()
        except InvalidArgument as e:
            raise InvalidArgument(e.field.removeprefix("sampling."), e.message) from None
        job.update(prompt=prompt if isinstance(prompt, str) else tuple(prompt), n=n, sampling=sampling)
    except ValueError as e:
        job["error"] = f"line {line_no}: not valid JSON ({e})"
    except InvalidArgument as e:
        job["error"] = f"line {line_no}: {e}"
    return job


def sampling_value(key: str, value):
    """A line's override checked against its JSON type (`SAMPLING_KEYS`); lists become tuples."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    kind = SAMPLING_KEYS[key]
    ok = {"number": number(value), "integer": number(value) and isinstance(value, int),
          "boolean": isinstance(value, bool),
          "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
          "integers": isinstance(value, list) and all(number(v) and isinstance(v, int) for v in value)}[kind]
    if key == "seed" and value is None:
        return None
    if not ok:
        what = {"number": "a number", "integer": "an integer", "boolean": "true or false",
                "strings": "a list of strings", "integers": "a list of integers"}[kind]
        raise InvalidArgument(key, f"must be {what}, got {json.dumps(value)[:40]}")
    return tuple(value) if isinstance(value, list) else float(value) if kind == "number" else value


def line_error(job: dict, error) -> str:
    """The error text for a line the engine refused, with its field named as the line names it."""
    field = error.field.replace("prompt.token_ids", "prompt_ids").replace("sampling.", "")
    return f"line {job['line']}: {field}: {error.message}"


def generate_in_process(jobs: list[dict], model: str, spec_tokens: int = 0, concurrency: int = 16,
                        logprobs: bool = False) -> list:
    """Runs the parsed lines through a TorchEngine; per line its outputs (by index) or its error text."""

    async def run() -> list:
        engine = TorchEngine(TorchEngineConfig(model=model, spec_tokens=spec_tokens))
        await engine.start()
        gate = asyncio.Semaphore(concurrency)

        async def one(job: dict):
            if "error" in job:
                return job["error"]
            prompt = job["prompt"]
            ids = engine.tokenize(prompt) if isinstance(prompt, str) else prompt
            request = GenerationRequest(f"line-{job['line']}", tuple(ids), job["n"], job["sampling"],
                                        return_logprobs=logprobs)
            async with gate:
                try:
                    outputs = [item async for item in engine.generate(request) if isinstance(item, SampleOutput)]
                except InvalidArgument as e:
                    return line_error(job, e)
            return sorted(outputs, key=lambda o: o.index)

        try:
            return await asyncio.gather(*(one(job) for job in jobs))
        finally:
            await engine.close()

    return asyncio.run(run())


def output_record(job: dict, result, logprobs: bool) -> dict:
    """The output line: the input object plus "samples", or plus "line" and "error"."""
    base = dict(job["record"]) if job["record"] is not None else {}
    if isinstance(result, str):
        return {**base, "line": job["line"], "error": result}
    samples = []
    for output in result:
        sample = {"index": output.index, "finish_reason": output.finish_reason.value, "text": output.text,
                  "token_ids": list(output.token_ids), "matched_stop": output.matched_stop,
                  "weight_version": output.weight_version, "spec_draft_tokens": output.spec_draft_tokens,
                  "spec_accepted_tokens": output.spec_accepted_tokens}
        if logprobs:
            sample["logprobs"] = list(output.logprobs)
        samples.append(sample)
    return {**base, "samples": samples}
