"""`SGLangBackend`: the generation Backend over an SGLang server's native HTTP API, token ids in and out.

Serving the teacher (DeepSeek-V3 layout; its MTP module drafts through SGLang's EAGLE path), with raw-model
log-probabilities:

    SGLANG_RETURN_ORIGINAL_LOGPROB=1 python -m sglang.launch_server --model-path /models/teacher \\
        --served-model-name teacher --api-key "$KEY" --enable-metrics \\
        --speculative-algorithm EAGLE --speculative-num-steps 1 --speculative-eagle-topk 1 \\
        --speculative-num-draft-tokens 2

MTP acceptance shows up per request in each finished sample's `meta_info` (`spec_verify_ct`,
`spec_draft_token_num`, `spec_accept_token_num`, `spec_accept_rate`, `spec_accept_length`), which fills
`SampleOutput.spec_draft_tokens` / `spec_accepted_tokens`, and in aggregate in SGLang's Prometheus metrics
(`sglang:spec_accept_length`, with --enable-metrics).

Endpoints used (SGLang's native API docs, `io_struct.GenerateReqInput`, `sampling_params.SamplingParams`,
`http_server.py`):
- POST /generate with a batch of n copies of the prompt: `rid` (a list: "<request_id>-<i>"), `input_ids` (a
  list of n token-id lists), `sampling_params` (a list of n dicts: `max_new_tokens`, `temperature`, `top_p`,
  `top_k`, `min_p`, `stop`, `stop_token_ids`, `ignore_eos`, `min_new_tokens`, `repetition_penalty`,
  `presence_penalty`, `frequency_penalty`, `skip_special_tokens`, `no_stop_trim: false`, `sampling_seed`),
  `return_logprob`, `stream: true`. Each SSE chunk is one sample's: `index`, cumulative `text` and
  `output_ids`, and `meta_info` (`id`, `finish_reason` null or {"type": "stop", "matched": <token id | stop
  string>} / {"type": "length", "length": n} / {"type": "abort", "message": ...}, `prompt_tokens`,
  `completion_tokens`, `cached_tokens`, `weight_version`, cumulative `output_token_logprobs` as
  [logprob, token_id, text] triples); then `data: [DONE]`.
- POST /abort_request {"rid": <sample rid>}.
- GET /health; GET /get_model_info (`model_path`, `weight_version`); GET /get_server_info (server args:
  `served_model_name`, `context_length`, `dtype`, `speculative_algorithm`, `speculative_num_draft_tokens`;
  scheduler info: `max_req_input_len`).
- POST /tokenize {prompt, add_special_tokens} -> `tokens`; POST /detokenize {tokens, skip_special_tokens} ->
  `text` (only without a local tokenizer).
- POST /update_weights_from_disk {"model_path": <staged dir or checkpoint>, "weight_version": "<version>"}
  -> {"success", "message", "num_paused_requests"}; SGLang flushes its radix cache after the update.
  Alternatives SGLang documents and this adapter does not use: POST /init_weights_update_group {master_address,
  master_port, rank_offset, world_size, group_name, backend} then /update_weights_from_distributed {names,
  dtypes, shapes, group_name} (an NCCL broadcast from a trainer on GPUs), and /update_weights_from_tensor
  {serialized_named_tensors, load_format, flush_cache} (tensors handed over in-process or by CUDA IPC).

Choices:
- n samples are sent as a batch of n, not as `sampling_params.n`: SGLang expands `n` into sub-requests with
  fresh random rids and one shared seed, so neither per-sample seeds (seed + i, as `sampling_seed`) nor
  per-sample aborts would be possible. The radix cache prefills the shared prompt once. SGLang draws
  seeded samples reproducibly only on a server started with --enable-deterministic-inference (its
  deterministic-inference docs); elsewhere `sampling_seed` is best effort.
- top_k 0 (off) is sent as -1 (SGLang refuses 0); SGLang accepts repetition_penalty only in (0, 2], so a
  larger one is refused here, before sending. max_new_tokens is capped to the context window.
- Log-probabilities: SGLang returns them after temperature scaling unless the server runs with
  SGLANG_RETURN_ORIGINAL_LOGPROB=1 (the raw model log-probabilities the contract asks for).
- Chunks are read as SGLang's default cumulative stream; a server started with
  --incremental-streaming-output is detected and refused.
- Abort posts /abort_request for each running sample and closes the stream (SGLang also aborts requests
  whose client went away); the samples still running end as ABORT with the tokens received so far.
- weight_version / last_weight_version come from the server's `meta_info.weight_version` when it is an
  integer (this adapter sets it with every update), else the adapter's version.
- /update_weights_from_disk waits until the requests in flight have finished (SGLang holds its model-update
  lock while requests run), so an update lands between requests rather than between decode steps.

Not done: text prompts (token ids only), regex / JSON-schema constraints, sessions, LoRA, the NCCL and
tensor weight paths above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from r1.engine.http_backend import (UNKNOWN_VOCAB, EngineHTTP, EngineServerConfig, Flight, Flights, LocalModel,
                                    SampleState, check_tensors, checkpoint_shapes, closing_items,
                                    completion_budget, new_samples, prune_staged, read_local_model, server_path,
                                    stage_checkpoint, weights_precondition)
from r1.engine.types import FinishReason, GenerationRequest, ModelInfo, SampleDelta, SampleOutput
from r1.errors import FailedPrecondition, InvalidArgument, R1Error

log = logging.getLogger(__name__)

ENGINE = "SGLang"
SECTION = "engine.sglang"
START_HINT = "python -m sglang.launch_server --model-path <checkpoint> --served-model-name <name>"
MAX_REPETITION_PENALTY = 2.0  # SGLang's SamplingParams.verify: (0, 2]
WEIGHTS_HINT = "the staged directory must be visible to the server: check weight_dir / server_weight_dir"


class SGLangBackend:
    """A Backend over one SGLang server (see the module docstring)."""

    def __init__(self, config: EngineServerConfig, section: str = SECTION):
        self.config = config
        self.section = section
        self._http: EngineHTTP | None = None
        self._info: ModelInfo | None = None
        self._local = LocalModel()
        self._flights = Flights()
        self._version = config.weight_version

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise FailedPrecondition(f"the SGLang backend ({self.section}) is not started: call start() first")
        return replace(self._info, weight_version=self._version)

    async def start(self) -> None:
        http = EngineHTTP(ENGINE, self.section, self.config, START_HINT)
        try:
            await http.get("/health")
            model = await http.get("/get_model_info")
            server = await http.get("/get_server_info")
            self._local = read_local_model(self.config.tokenizer, self.section) if self.config.tokenizer \
                else LocalModel()
            info = self._model_info(http, model, server)
        except BaseException:
            await http.aclose()
            raise
        self._http, self._info = http, info

    def _model_info(self, http: EngineHTTP, model: Any, server: Any) -> ModelInfo:
        if not isinstance(model, dict) or not isinstance(server, dict):
            raise http.protocol_error("a /get_model_info or /get_server_info answer that is not an object")
        name = str(server.get("served_model_name") or model.get("model_path") or "")
        if self.config.model and self.config.model != name:
            raise FailedPrecondition(f"the SGLang server at {http.base_url} serves {name!r}, not "
                                     f"{self.config.model!r}: fix {self.section}.model")
        window = self.config.max_context_tokens or int(server.get("context_length") or 0) or \
            (int(server["max_req_input_len"]) + 1 if server.get("max_req_input_len") else 0)
        if window < 2:
            raise FailedPrecondition(f"the SGLang server at {http.base_url} reports no context length: set "
                                     f"{self.section}.max_context_tokens")
        self._version = _int_or(model.get("weight_version"), self._version)
        spec = int(server.get("speculative_num_draft_tokens") or 1) - 1 if server.get("speculative_algorithm") \
            else 0
        local, dtype = self._local, str(server.get("dtype") or "auto")
        return ModelInfo(
            model_id=name, architecture=local.architecture or "unknown", backend="sglang",
            weight_version=self._version, eos_token_ids=local.eos_token_ids, bos_token_id=local.bos_token_id,
            pad_token_id=local.pad_token_id, max_context_tokens=window, vocab_size=local.vocab_size,
            mtp_depth=local.mtp_depth, spec_tokens=max(spec, 0),
            dtype=local.dtype if dtype == "auto" and local.dtype else dtype,
            checkpoint=str(model.get("model_path") or ""))

    async def close(self) -> None:
        for flight in self._flights.all():
            flight.abort()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _require(self) -> tuple[EngineHTTP, ModelInfo]:
        info = self.info
        if self._http is None:
            raise FailedPrecondition(f"the SGLang backend ({self.section}) is closed")
        return self._http, info

    # ----------------------------------------------------------------------------------------- generate

    async def generate(self, request: GenerationRequest) -> AsyncIterator[SampleDelta | SampleOutput]:
        http, info = self._require()
        request.validate(info.vocab_size or UNKNOWN_VOCAB, info.max_context_tokens)
        if request.sampling.repetition_penalty > MAX_REPETITION_PENALTY:
            raise InvalidArgument("sampling.repetition_penalty", f"SGLang accepts (0, {MAX_REPETITION_PENALTY:g}], "
                                                                 f"got {request.sampling.repetition_penalty!r}")
        body = self._body(request, info)
        flight = self._flights.open(request.request_id)
        flight.samples = new_samples(request.n, request.sampling.stop, len(request.prompt_ids))
        async with aclosing(self._run(http, request, flight, http.stream("/generate", body))) as items:
            async for item in items:
                yield item

    def _body(self, request: GenerationRequest, info: ModelInfo) -> dict[str, Any]:
        s = request.sampling
        max_tokens = completion_budget(len(request.prompt_ids), s.max_tokens, info.max_context_tokens)
        params = {
            "max_new_tokens": max_tokens, "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k or -1,
            "min_p": s.min_p, "stop": list(s.stop), "stop_token_ids": list(s.stop_token_ids),
            "ignore_eos": s.ignore_eos, "min_new_tokens": min(s.min_tokens, max_tokens),
            "repetition_penalty": s.repetition_penalty, "presence_penalty": s.presence_penalty,
            "frequency_penalty": s.frequency_penalty, "skip_special_tokens": request.skip_special_tokens,
            "no_stop_trim": False}
        per_sample = [params if s.seed is None else {**params, "sampling_seed": s.seed + i}
                      for i in range(request.n)]
        return {"rid": [_rid(request.request_id, i) for i in range(request.n)],
                "input_ids": [list(request.prompt_ids)] * request.n, "sampling_params": per_sample,
                "return_logprob": request.return_logprobs, "stream": True}

    async def _run(self, http: EngineHTTP, request: GenerationRequest, flight: Flight,
                   stream: AsyncIterator[Any]) -> AsyncIterator[SampleDelta | SampleOutput]:
        try:
            flight.start([stream])
            async for _, chunk in flight.events():
                for item in self._chunk(http, request, flight.samples, chunk):
                    yield item
            if flight.aborted:
                for item in closing_items(flight.samples, self._version):
                    yield item
        finally:
            await flight.stop()
            self._flights.close(flight)

    def _chunk(self, http: EngineHTTP, request: GenerationRequest, samples: list[SampleState],
               chunk: Any) -> list[SampleDelta | SampleOutput]:
        """Items from one chunk (None: the stream has ended)."""
        if chunk is None:
            unfinished = [s.index for s in samples if s.finish is None]
            if unfinished:
                raise http.protocol_error(f"a /generate stream that ended before samples {unfinished} finished")
            return []
        index = chunk.get("index", 0) if isinstance(chunk, dict) else None
        meta = chunk.get("meta_info") if isinstance(chunk, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(samples) or not isinstance(meta, dict):
            raise http.protocol_error(f"a /generate chunk without a sample index or meta_info: {str(chunk)[:200]}")
        sample = samples[index]
        if sample.reported:
            return []  # e.g. the abort echo of a sample that had already finished
        reason = meta.get("finish_reason")
        aborted = isinstance(reason, dict) and reason.get("type") == "abort"
        new = [] if aborted else self._new_tokens(http, sample, chunk.get("output_ids"))
        logprobs = self._new_logprobs(http, sample, meta, len(new)) if request.return_logprobs else []
        version = _int_or(meta.get("weight_version"), self._version)
        text = sample.text if aborted else str(chunk.get("text") or "")
        delta = sample.advance(new, logprobs, text, version, final=reason is not None)
        sample.prompt_tokens = int(meta.get("prompt_tokens") or sample.prompt_tokens)
        sample.cached_prompt_tokens = int(meta.get("cached_tokens") or sample.cached_prompt_tokens)
        items: list[SampleDelta | SampleOutput] = [delta] if delta else []
        if reason is not None:
            sample.end(*self._finish(http, reason))
            sample.spec_draft_tokens = int(meta.get("spec_draft_token_num") or 0)
            sample.spec_accepted_tokens = int(meta.get("spec_accept_token_num") or 0)
            items.append(sample.output(version))
        return items

    @staticmethod
    def _new_tokens(http: EngineHTTP, sample: SampleState, output_ids: Any) -> list[int]:
        if not isinstance(output_ids, list):
            raise http.protocol_error("a /generate chunk without output_ids")
        seen = len(sample.tokens)
        if output_ids[:seen] != sample.tokens:
            raise http.protocol_error("output_ids that do not extend the sample's earlier ones (start the server "
                                      "without --incremental-streaming-output)")
        return [int(t) for t in output_ids[seen:]]

    @staticmethod
    def _new_logprobs(http: EngineHTTP, sample: SampleState, meta: dict, count: int) -> list[float]:
        entries = meta.get("output_token_logprobs") or []
        seen = len(sample.logprobs)
        new = entries[seen:seen + count]
        if len(new) != count or any(not isinstance(e, list) or not isinstance(e[0], (int, float)) for e in new):
            raise http.protocol_error(f"{count} new output_ids with output_token_logprobs {new!r}")
        return [float(e[0]) for e in new]

    @staticmethod
    def _finish(http: EngineHTTP, reason: Any) -> tuple[FinishReason, str]:
        kind = reason.get("type") if isinstance(reason, dict) else None
        if kind == "length":
            return FinishReason.LENGTH, ""
        if kind == "stop":
            matched = reason.get("matched")
            if isinstance(matched, str):
                return FinishReason.STOP_STRING, matched
            return FinishReason.STOP, ""  # eos or a stop token id
        if kind == "abort":
            if reason.get("message"):
                log.info("SGLang aborted a sample: %s", reason["message"])
            return FinishReason.ABORT, ""
        raise http.protocol_error(f"finish_reason {reason!r}")

    async def abort(self, request_id: str) -> bool:
        flight = self._flights.get(request_id)
        if flight is None or flight.aborted or self._http is None:
            return False
        flight.aborted = True
        running = [_rid(request_id, s.index) for s in flight.samples if s.finish is None]
        results = await asyncio.gather(*(self._http.post("/abort_request", {"rid": rid}) for rid in running),
                                       return_exceptions=True)
        for rid, result in zip(running, results):
            if isinstance(result, R1Error):  # closing the stream below aborts it too
                log.warning("SGLang /abort_request for %s failed: %s", rid, result)
        flight.abort()
        return True

    # ------------------------------------------------------------------------------------------- tokens

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if self._local.tokenizer is not None:
            return list(self._local.tokenizer.encode(text, add_special_tokens=add_special_tokens))
        http, _ = self._require()
        answer = http.post_sync("/tokenize", {"prompt": text, "add_special_tokens": add_special_tokens})
        if not isinstance(answer, dict) or not isinstance(answer.get("tokens"), list):
            raise http.protocol_error(f"a /tokenize answer without tokens: {str(answer)[:200]}")
        return [int(t) for t in answer["tokens"]]

    def detokenize(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        if self._local.tokenizer is not None:
            return self._local.tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)
        http, _ = self._require()
        answer = http.post_sync("/detokenize", {"tokens": list(token_ids),
                                                "skip_special_tokens": skip_special_tokens})
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise http.protocol_error(f"a /detokenize answer without text: {str(answer)[:200]}")
        return answer["text"]

    # ------------------------------------------------------------------------------------------ weights

    async def update_weights(self, version: int, tensors: Mapping[str, object]) -> int:
        http, _ = self._require()
        weights_precondition(self.config, self.section, version, self._version)
        checked = await asyncio.to_thread(lambda: check_tensors(tensors, checkpoint_shapes(self.config.tokenizer)))
        staged = await asyncio.to_thread(stage_checkpoint, self.config.weight_dir, version, checked,
                                         self.config.tokenizer)
        await self._load(http, server_path(self.config, staged), version)
        await asyncio.to_thread(prune_staged, self.config.weight_dir, self.config.keep_staged)
        return len(checked)

    async def load_checkpoint(self, path: str, version: int, revision: str | None = None) -> ModelInfo:
        http, info = self._require()
        if revision:
            raise InvalidArgument("revision", "SGLang's /update_weights_from_disk takes no revision: pass a local "
                                              "directory (or a hub id at the revision wanted)")
        if version <= self._version:
            raise FailedPrecondition(f"version {version} must be greater than the served {self._version}")
        await self._load(http, path, version)
        self._info = replace(info, checkpoint=path)
        return self.info

    async def _load(self, http: EngineHTTP, model_path: str, version: int) -> None:
        answer = await http.post("/update_weights_from_disk",
                                 {"model_path": model_path, "weight_version": str(version)},
                                 hint=WEIGHTS_HINT, refused=FailedPrecondition)
        if not isinstance(answer, dict) or answer.get("success") is not True:
            raise http.protocol_error(f"an /update_weights_from_disk answer without success: {str(answer)[:200]}")
        self._version = version


def _rid(request_id: str, index: int) -> str:
    return f"{request_id}-{index}"


def _int_or(value: Any, default: int) -> int:
    """An integer weight version from the server ("7" or 7), else `default` (SGLang's own is "default")."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default
