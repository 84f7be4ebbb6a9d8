"""`VLLMBackend`: the generation Backend over a vLLM server's OpenAI-compatible HTTP API, token ids in and out.

Serving the teacher (DeepSeek-V3 layout, MTP speculative decoding), with the weight endpoints enabled:

    VLLM_SERVER_DEV_MODE=1 vllm serve /models/teacher --served-model-name teacher --api-key "$KEY" \\
        --speculative-config '{"method": "mtp", "num_speculative_tokens": 1}' --enable-prompt-tokens-details

MTP acceptance shows up in vLLM's Prometheus /metrics as counters: `vllm:spec_decode_num_drafts`,
`vllm:spec_decode_num_draft_tokens`, `vllm:spec_decode_num_accepted_tokens` and
`vllm:spec_decode_num_accepted_tokens_per_pos{position="k"}` (acceptance of draft position k = that counter /
num_drafts; the paper's 85-90 % is position 0). vLLM does not report acceptance per request in the streamed
completions, so `SampleOutput.spec_*` stay 0 here.

Endpoints used (vLLM's `CompletionRequest` / `CompletionStreamResponse`, the OpenAI-compatible server docs,
and the dev-mode routers):
- POST /v1/completions: `model`, `prompt` (a list of token ids), `n`, `max_tokens`, `temperature`, `top_p`,
  `top_k`, `min_p`, `seed`, `stop`, `stop_token_ids`, `ignore_eos`, `min_tokens`, `repetition_penalty`,
  `presence_penalty`, `frequency_penalty`, `logprobs` (0: the sampled token's), `skip_special_tokens`,
  `include_stop_str_in_output: false`, `return_token_ids: true`, `stream: true`,
  `stream_options.include_usage`. Read back per choice: `index`, `text`, `token_ids`,
  `logprobs.token_logprobs`, `finish_reason` ("stop" | "length" | "abort"), `stop_reason` (the stop string,
  a stop token id, or null for eos); then a final chunk with no choices and `usage` (`prompt_tokens`,
  `prompt_tokens_details.cached_tokens` with --enable-prompt-tokens-details); then `data: [DONE]`.
- GET /health; GET /v1/models (`id`, `root`, `max_model_len`).
- POST /tokenize {model, prompt, add_special_tokens} -> `tokens`; POST /detokenize {model, tokens} -> `prompt`
  (used only without a local tokenizer; /detokenize has no skip_special_tokens switch, so the server's
  decoding of special tokens applies).
- Dev mode (VLLM_SERVER_DEV_MODE=1): POST /collective_rpc {"method": "update_config", "args":
  [{"model_config": {"model": <dir>}}]} then {"method": "reload_weights"} (the workers reload the weights in
  place from the new path, between engine steps, as in vLLM's "skip loading weights in engine init"
  example), then POST /reset_prefix_cache so no cached prefix computed by the old weights is reused.

Choices:
- Unseeded requests go as one request with `n`. A seeded request goes as n requests with n = 1 and seed + i:
  vLLM draws all n samples of one request from one seeded generator, so sample i would not be seed + i
  otherwise; vLLM's prefix cache makes the repeated prompt cheap.
- top_k 0 (off) is sent as -1, which every vLLM version reads as off. max_tokens is capped so that prompt
  plus completion fit max_model_len (the cap ends as LENGTH instead of a 400).
- Log-probabilities: vLLM's default `--logprobs-mode raw_logprobs` gives the raw model log-probabilities the
  contract asks for; do not start the server with a processed mode.
- A stream's SampleOutputs are handed out when its usage chunk arrives (they carry its prompt and cached
  token counts); deltas stream as they come.
- Abort closes the request's streams; vLLM aborts a request whose client disconnected.
- weight_version / last_weight_version are the adapter's version when a sample's first / last token
  arrived: tokens in flight while weights are swapped may be credited to either version.

Not done: LoRA adapters (/v1/load_lora_adapter); the NCCL / CUDA-IPC weight transfer of vLLM's RLHF API
(/init_weight_transfer_engine, /update_weights: they need the trainer on GPUs beside the server; staged
safetensors over a shared volume work anywhere); /pause and /resume; per-request spec-decode counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from r1.engine.http_backend import (UNKNOWN_VOCAB, EngineHTTP, EngineServerConfig, Flight, Flights, LocalModel,
                                    SampleState, check_tensors, checkpoint_shapes, closing_items,
                                    completion_budget, new_samples, prune_staged, read_local_model, server_path,
                                    stage_checkpoint, weights_precondition)
from r1.engine.types import FinishReason, GenerationRequest, ModelInfo, SampleDelta, SampleOutput
from r1.errors import FailedPrecondition

ENGINE = "vLLM"
SECTION = "engine.vllm"
START_HINT = "vllm serve <checkpoint> --served-model-name <name>"
DEV_MODE_HINT = ("vLLM serves /collective_rpc and /reset_prefix_cache only when started with "
                 "VLLM_SERVER_DEV_MODE=1")


class VLLMBackend:
    """A Backend over one vLLM server (see the module docstring)."""

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
            raise FailedPrecondition(f"the vLLM backend ({self.section}) is not started: call start() first")
        return replace(self._info, weight_version=self._version)

    async def start(self) -> None:
        http = EngineHTTP(ENGINE, self.section, self.config, START_HINT)
        try:
            await http.get("/health")
            card = self._pick_model(http, await http.get("/v1/models"))
            self._local = read_local_model(self.config.tokenizer, self.section) if self.config.tokenizer \
                else LocalModel()
            info = self._model_info(http, card)
        except BaseException:
            await http.aclose()
            raise
        self._http, self._info = http, info

    def _pick_model(self, http: EngineHTTP, listing: Any) -> dict:
        cards = listing.get("data") if isinstance(listing, dict) else None
        if not cards or not all(isinstance(c, dict) and "id" in c for c in cards):
            raise http.protocol_error(f"a /v1/models answer without models: {str(listing)[:200]}")
        if not self.config.model:
            return cards[0]
        for card in cards:
            if card["id"] == self.config.model:
                return card
        raise FailedPrecondition(f"the vLLM server at {http.base_url} serves {[c['id'] for c in cards]}, not "
                                 f"{self.config.model!r}: fix {self.section}.model")

    def _model_info(self, http: EngineHTTP, card: dict) -> ModelInfo:
        window = self.config.max_context_tokens or int(card.get("max_model_len") or 0)
        if window < 2:
            raise FailedPrecondition(f"the vLLM server at {http.base_url} reports no max_model_len for "
                                     f"{card['id']!r}: set {self.section}.max_context_tokens")
        local = self._local
        return ModelInfo(
            model_id=card["id"], architecture=local.architecture or "unknown", backend="vllm",
            weight_version=self._version, eos_token_ids=local.eos_token_ids, bos_token_id=local.bos_token_id,
            pad_token_id=local.pad_token_id, max_context_tokens=window, vocab_size=local.vocab_size,
            mtp_depth=local.mtp_depth, dtype=local.dtype or "unknown", checkpoint=str(card.get("root") or ""))

    async def close(self) -> None:
        for flight in self._flights.all():
            flight.abort()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _require(self) -> tuple[EngineHTTP, ModelInfo]:
        info = self.info
        if self._http is None:
            raise FailedPrecondition(f"the vLLM backend ({self.section}) is closed")
        return self._http, info

    # ----------------------------------------------------------------------------------------- generate

    async def generate(self, request: GenerationRequest) -> AsyncIterator[SampleDelta | SampleOutput]:
        http, info = self._require()
        request.validate(info.vocab_size or UNKNOWN_VOCAB, info.max_context_tokens)
        seed = request.sampling.seed
        bodies = ([self._body(request, info, 1, seed + i) for i in range(request.n)] if seed is not None
                  else [self._body(request, info, request.n, None)])
        flight = self._flights.open(request.request_id)
        flight.samples = new_samples(request.n, request.sampling.stop, len(request.prompt_ids))
        streams = [http.stream("/v1/completions", body) for body in bodies]
        async with aclosing(self._run(http, request, flight, streams, seeded=seed is not None)) as items:
            async for item in items:
                yield item

    def _body(self, request: GenerationRequest, info: ModelInfo, n: int, seed: int | None) -> dict[str, Any]:
        s = request.sampling
        max_tokens = completion_budget(len(request.prompt_ids), s.max_tokens, info.max_context_tokens)
        body: dict[str, Any] = {
            "model": info.model_id, "prompt": list(request.prompt_ids), "n": n, "max_tokens": max_tokens,
            "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k or -1, "min_p": s.min_p,
            "stop": list(s.stop), "stop_token_ids": list(s.stop_token_ids), "ignore_eos": s.ignore_eos,
            "min_tokens": min(s.min_tokens, max_tokens), "repetition_penalty": s.repetition_penalty,
            "presence_penalty": s.presence_penalty, "frequency_penalty": s.frequency_penalty,
            "skip_special_tokens": request.skip_special_tokens, "include_stop_str_in_output": False,
            "return_token_ids": True, "stream": True, "stream_options": {"include_usage": True}}
        if seed is not None:
            body["seed"] = seed
        if request.return_logprobs:
            body["logprobs"] = 0
        return body

    async def _run(self, http: EngineHTTP, request: GenerationRequest, flight: Flight,
                   streams: list[AsyncIterator[Any]], seeded: bool) -> AsyncIterator[SampleDelta | SampleOutput]:
        try:
            flight.start(streams)
            async for stream, chunk in flight.events():
                owned = [flight.samples[stream]] if seeded else flight.samples
                for item in self._chunk(http, request, owned, chunk):
                    yield item
            if flight.aborted:
                for item in closing_items(flight.samples, self._version):
                    yield item
        finally:
            await flight.stop()
            self._flights.close(flight)

    def _chunk(self, http: EngineHTTP, request: GenerationRequest, owned: list[SampleState],
               chunk: Any) -> list[SampleDelta | SampleOutput]:
        """Items from one chunk of a stream whose samples are `owned` (None: the stream has ended)."""
        if chunk is None:
            unfinished = [s.index for s in owned if s.finish is None]
            if unfinished:
                raise http.protocol_error(f"a stream that ended before samples {unfinished} finished")
            return [s.output(self._version) for s in owned if not s.reported]
        if not isinstance(chunk, dict):
            raise http.protocol_error(f"a completion chunk that is not an object: {str(chunk)[:200]}")
        items: list[SampleDelta | SampleOutput] = []
        choices = chunk.get("choices") or []
        for choice in choices:
            index = choice.get("index", 0) if len(owned) > 1 else 0
            if not isinstance(index, int) or not 0 <= index < len(owned):
                raise http.protocol_error(f"choice index {index!r} for a stream of {len(owned)} samples")
            items += self._choice(http, request, owned[index], choice)
        if not choices and isinstance(chunk.get("usage"), dict):
            items += self._usage(owned, chunk["usage"])
        return items

    def _choice(self, http: EngineHTTP, request: GenerationRequest, sample: SampleState,
                choice: dict) -> list[SampleDelta]:
        ids = choice.get("token_ids")
        if not isinstance(ids, list):
            raise http.protocol_error("a completion chunk without token_ids (return_token_ids needs a vLLM "
                                      "release that supports it)")
        logprobs: list[float] = []
        if request.return_logprobs and ids:
            logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or []
            if len(logprobs) != len(ids) or any(not isinstance(v, (int, float)) for v in logprobs):
                raise http.protocol_error(f"{len(ids)} token ids with token_logprobs {logprobs!r}")
        reason = choice.get("finish_reason")
        delta = sample.advance(ids, [float(v) for v in logprobs], sample.text + (choice.get("text") or ""),
                               self._version, final=reason is not None)
        if reason is not None:
            sample.end(*self._finish(http, reason, choice.get("stop_reason")))
        return [delta] if delta else []

    @staticmethod
    def _finish(http: EngineHTTP, reason: str, stop_reason: Any) -> tuple[FinishReason, str]:
        if reason == "length":
            return FinishReason.LENGTH, ""
        if reason == "stop":
            if isinstance(stop_reason, str):
                return FinishReason.STOP_STRING, stop_reason
            return FinishReason.STOP, ""  # eos (stop_reason null) or a stop token id
        if reason == "abort":
            return FinishReason.ABORT, ""
        raise http.protocol_error(f"finish_reason {reason!r}")

    def _usage(self, owned: list[SampleState], usage: dict) -> list[SampleOutput]:
        prompt = int(usage.get("prompt_tokens") or 0)
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        outputs = []
        for sample in owned:
            sample.prompt_tokens = prompt or sample.prompt_tokens
            sample.cached_prompt_tokens = cached
            if sample.finish is not None and not sample.reported:
                outputs.append(sample.output(self._version))
        return outputs

    async def abort(self, request_id: str) -> bool:
        flight = self._flights.get(request_id)
        if flight is None or flight.aborted:
            return False
        flight.abort()
        return True

    # ------------------------------------------------------------------------------------------- tokens

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if self._local.tokenizer is not None:
            return list(self._local.tokenizer.encode(text, add_special_tokens=add_special_tokens))
        http, info = self._require()
        answer = http.post_sync("/tokenize", {"model": info.model_id, "prompt": text,
                                              "add_special_tokens": add_special_tokens})
        if not isinstance(answer, dict) or not isinstance(answer.get("tokens"), list):
            raise http.protocol_error(f"a /tokenize answer without tokens: {str(answer)[:200]}")
        return [int(t) for t in answer["tokens"]]

    def detokenize(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        if self._local.tokenizer is not None:
            return self._local.tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)
        http, info = self._require()
        answer = http.post_sync("/detokenize", {"model": info.model_id, "tokens": list(token_ids)})
        if not isinstance(answer, dict) or not isinstance(answer.get("prompt"), str):
            raise http.protocol_error(f"a /detokenize answer without prompt: {str(answer)[:200]}")
        return answer["prompt"]

    # ------------------------------------------------------------------------------------------ weights

    async def update_weights(self, version: int, tensors: Mapping[str, object]) -> int:
        http, _ = self._require()
        weights_precondition(self.config, self.section, version, self._version)
        checked = await asyncio.to_thread(lambda: check_tensors(tensors, checkpoint_shapes(self.config.tokenizer)))
        staged = await asyncio.to_thread(stage_checkpoint, self.config.weight_dir, version, checked,
                                         self.config.tokenizer)
        await self._reload(http, {"model": server_path(self.config, staged)})
        self._version = version
        await asyncio.to_thread(prune_staged, self.config.weight_dir, self.config.keep_staged)
        return len(checked)

    async def load_checkpoint(self, path: str, version: int, revision: str | None = None) -> ModelInfo:
        http, info = self._require()
        if version <= self._version:
            raise FailedPrecondition(f"version {version} must be greater than the served {self._version}")
        await self._reload(http, {"model": path, **({"revision": revision} if revision else {})})
        self._version = version
        self._info = replace(info, checkpoint=path)
        return self.info

    async def _reload(self, http: EngineHTTP, model_config: dict[str, str]) -> None:
        """Point the workers' model config at new weights, reload them in place, drop the prefix cache."""
        for body in ({"method": "update_config", "args": [{"model_config": model_config}]},
                     {"method": "reload_weights"}):
            await http.post("/collective_rpc", body, hint=DEV_MODE_HINT, refused=FailedPrecondition)
        await http.post("/reset_prefix_cache", hint=DEV_MODE_HINT, refused=FailedPrecondition)
