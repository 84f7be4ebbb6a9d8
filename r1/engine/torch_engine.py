"""Our torch generation engine: continuous batching over a slot cache, per-sample sampling, MTP speculation.

One engine thread owns the model. Each iteration it (1) applies what the callers queued (aborts, a staged
weight update, a checkpoint swap) — so weights only ever change between two decode steps; (2) admits
waiting requests while cache slots are free, prefilling each prompt once for its n samples; (3) runs one
decode step (or one speculative step: MTP drafts, one verify pass, rejection sampling) over every running
sample at once; (4) hands each request its new tokens. A sample leaves the batch the moment it finishes and
its slot goes to the next waiting request: continuous batching, as in vLLM and SGLang, without their
paging (see `slots.py`).

The asyncio side (`generate`, `abort`, `update_weights`, `load_checkpoint`) talks to the thread through a
lock-guarded inbox; results come back through the caller's event loop (`call_soon_threadsafe`), one batch of
items per request per step. Cancelling a `generate` iteration aborts its request.

Per sample: its own `torch.Generator` (seed + index when the request is seeded), penalties, min_tokens,
stop strings and ids, max_tokens and the context window, raw-logit log-probabilities, and the weight
versions of its first and last token. `runner` is the model-specific part: `TeacherRunner` for our
DeepSeek-V3 checkpoints (latent cache, absorbed decode, MTP drafts) or `HFRunner` for transformers students.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from r1.engine import sampling
from r1.engine.detokenizer import TextStream
from r1.engine.loading import LoadedModel, check_update, load_model
from r1.engine.observer import EngineObserver, NullObserver
from r1.engine.types import FinishReason, GenerationRequest, ModelInfo, SampleDelta, SampleOutput
from r1.errors import AlreadyExists, FailedPrecondition, InvalidArgument, ResourceExhausted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchEngineConfig:
    """model: checkpoint directory or hub id (ours: DeepSeek-V3 layout; or a transformers Qwen2/Llama);
    dtype: float32 | bfloat16 | float16; device: cpu | cuda[:i]; max_num_seqs: samples decoded at once
    (cache slots); max_waiting: requests queued beyond those before RESOURCE_EXHAUSTED; max_context_tokens:
    prompt + completion limit (0: the model's max_position_embeddings); spec_tokens: MTP draft tokens per
    step (0: off; needs a checkpoint with MTP modules); spec_max_batch: speculate only in steps running at
    most this many samples, plain steps above (0: no limit; vLLM's speculative_disable_by_batch_size: a
    large batch is compute-bound, so verifying k + 1 tokens per sample costs about k + 1 plain steps and
    rejected drafts are lost work); threads: torch intra-op threads (0: torch's default); weight_version:
    the version the startup weights are served as."""

    model: str = ""
    dtype: str = "float32"
    device: str = "cpu"
    max_num_seqs: int = 256
    max_waiting: int = 1024
    max_context_tokens: int = 0
    spec_tokens: int = 0
    spec_max_batch: int = 0
    threads: int = 0
    weight_version: int = 0

    def check(self, section: str = "engine") -> None:
        """InvalidArgument naming `{section}.<field>` for the first field that cannot work."""
        if not self.model:
            raise InvalidArgument(f"{section}.model", "is required: a checkpoint directory or hub id")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise InvalidArgument(f"{section}.dtype", f"must be float32, bfloat16 or float16, got {self.dtype!r}")
        for name in ("max_num_seqs", "max_waiting"):
            if getattr(self, name) < 1:
                raise InvalidArgument(f"{section}.{name}", f"must be >= 1, got {getattr(self, name)}")
        for name in ("max_context_tokens", "spec_tokens", "spec_max_batch", "threads"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"{section}.{name}", f"must be >= 0, got {getattr(self, name)}")


@dataclass
class _Request:
    request: GenerationRequest
    emit: Any  # callable(list of items | None), thread-safe
    arrived: float = field(default_factory=time.perf_counter)
    samples: list[_Sample] = field(default_factory=list)
    unfinished: int = 0
    aborted: bool = False


@dataclass
class _Sample:
    owner: _Request
    index: int
    slot: int
    generator: torch.Generator
    text: TextStream
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    counts: torch.Tensor | None = None  # [V] completion-token counts, only with penalties
    seen: torch.Tensor | None = None  # [V] bool, prompt or completion, only with penalties
    stop_ids: frozenset[int] = frozenset()  # eos (unless ignore_eos) and the request's stop_token_ids
    pending: int = -1  # the last sampled token, not yet in the cache
    drafted: int = 0
    accepted: int = 0
    first_version: int = -1
    last_version: int = 0
    last_token_at: float = 0.0
    finish: FinishReason | None = None
    matched_stop: str = ""
    out_tokens: list[int] = field(default_factory=list)  # this step's, for the delta
    out_logprobs: list[float] = field(default_factory=list)
    out_text: list[str] = field(default_factory=list)

    @property
    def params(self):
        return self.owner.request.sampling


class TorchEngine:
    """The `Backend` of the torch engine. `await engine.start()` loads the model; see the module docstring."""

    name = "torch"

    def __init__(self, config: TorchEngineConfig, observer: EngineObserver | None = None, section: str = "engine"):
        """section: where this config sits in the caller's settings, for error messages (`engine.torch`)."""
        config.check(section)
        self.config, self.section = config, section
        self.observer = observer or NullObserver()
        self.loaded: LoadedModel | None = None
        self._lock = threading.Condition()
        self._waiting: deque[_Request] = deque()
        self._running: list[_Sample] = []
        self._requests: dict[str, _Request] = {}
        self._commands: list[tuple[str, Any, Future]] = []
        self._abort_ids: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._version = config.weight_version
        self._counter = 0

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.loaded = await asyncio.to_thread(load_model, self.config.model, self.config, None, self.section)
        self._thread = threading.Thread(target=self._loop, name="r1-torch-engine", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    @property
    def info(self) -> ModelInfo:
        assert self.loaded is not None, "start() first"
        return replace(self.loaded.info, weight_version=self._version)

    def stats(self) -> dict[str, int]:
        """running / waiting samples and cache bytes in use, for the service's gauges."""
        with self._lock:
            running = list(self._running)
            waiting = sum(r.request.n for r in self._waiting)
        runner = self.loaded.runner if self.loaded else None
        slots = [s.slot for s in running if s.slot >= 0]
        return {"running": len(running), "waiting": waiting,
                "cache_bytes": runner.cache_bytes(slots) if runner is not None and slots else 0}

    # ------------------------------------------------------------------------------------------- requests

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.loaded.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]

    def detokenize(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.loaded.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[SampleDelta | SampleOutput]:
        info = self.info
        request.validate(info.vocab_size, info.max_context_tokens)
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()

        def emit(items) -> None:  # engine thread
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, items)
            except RuntimeError:  # the caller's loop is gone
                pass

        state = self._submit(request, emit)
        done = False
        try:
            while True:
                items = await inbox.get()
                if items is None:
                    done = True
                    return
                for item in items:
                    yield item
        finally:
            if not done:
                self._request_abort(state.request.request_id)

    async def abort(self, request_id: str) -> bool:
        return self._request_abort(request_id)

    def _submit(self, request: GenerationRequest, emit) -> _Request:
        with self._lock:
            if self._stopping:
                raise FailedPrecondition("the engine is shutting down")
            if not request.request_id:
                self._counter += 1
                request = replace(request, request_id=f"internal-{self._counter}")
            if request.request_id in self._requests:
                raise AlreadyExists(f"request_id {request.request_id!r} is already in flight; use a unique id")
            if len(self._waiting) >= self.config.max_waiting:
                raise ResourceExhausted(f"{len(self._waiting)} requests are already waiting "
                                        f"({self.section}.max_waiting); retry later")
            if request.n > self.config.max_num_seqs:
                raise InvalidArgument("n", f"{request.n} samples exceed the engine's {self.config.max_num_seqs} "
                                           f"concurrent samples ({self.section}.max_num_seqs)")
            state = _Request(request, emit, unfinished=request.n)
            self._requests[request.request_id] = state
            self._waiting.append(state)
            self._lock.notify_all()
        return state

    def _request_abort(self, request_id: str) -> bool:
        with self._lock:
            if request_id not in self._requests:
                return False
            self._abort_ids.add(request_id)
            self._lock.notify_all()
            return True

    # -------------------------------------------------------------------------------------------- weights

    async def update_weights(self, version: int, tensors: Mapping[str, torch.Tensor]) -> int:
        if version <= self._version:
            raise FailedPrecondition(f"version {version} must be greater than the served {self._version}")
        staged = await asyncio.to_thread(check_update, self.loaded, tensors)
        return await asyncio.wrap_future(self._command("update", (version, staged)))

    async def load_checkpoint(self, path: str, version: int, revision: str | None = None) -> ModelInfo:
        loaded = await asyncio.to_thread(load_model, path, self.config, revision, self.section)
        if (loaded.info.vocab_size, loaded.info.architecture) != (self.info.vocab_size, self.info.architecture):
            raise FailedPrecondition(f"{path} is a {loaded.info.architecture} with vocabulary "
                                     f"{loaded.info.vocab_size}; this server serves a {self.info.architecture} "
                                     f"with {self.info.vocab_size}: start a new server to switch models")
        loaded.info = replace(loaded.info, model_id=self.loaded.info.model_id)  # the id it was first loaded as
        await asyncio.wrap_future(self._command("load", (loaded, version)))
        return self.info

    def _command(self, kind: str, payload: Any) -> Future:
        future: Future = Future()
        with self._lock:
            self._commands.append((kind, payload, future))
            self._lock.notify_all()
        return future

    def _apply(self, kind: str, payload: Any) -> Any:
        if kind == "update":
            version, staged = payload
            started = time.perf_counter()
            with torch.no_grad():
                for target, tensor in staged:
                    target.copy_(tensor)
            self.loaded.runner.weights_changed()
            self._version = version
            self.observer.weights_updated(version, time.perf_counter() - started)
            return len(staged)
        loaded, version = payload
        for state in list(self._requests.values()):  # a new checkpoint: nothing in flight survives it
            self._finish_request(state, FinishReason.ABORT)
        self.loaded, self._version = loaded, version
        self.observer.weights_updated(version, 0.0)
        return None

    # ---------------------------------------------------------------------------------------- engine loop

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not (self._waiting or self._running or self._commands or self._abort_ids or self._stopping):
                    self._lock.wait()
                if self._stopping:
                    break
                commands, self._commands = self._commands, []
                aborts, self._abort_ids = self._abort_ids, set()
            for kind, payload, future in commands:
                if not future.set_running_or_notify_cancel():
                    continue  # the caller gave up before the swap: nothing is applied
                try:
                    future.set_result(self._apply(kind, payload))
                except Exception as e:  # reported to the caller; the engine keeps serving
                    future.set_exception(e)
            for request_id in aborts:
                state = self._requests.get(request_id)
                if state is not None:
                    self._finish_request(state, FinishReason.ABORT)
            try:
                self._admit()
                if self._running:
                    self._step()
            except Exception:  # a bug must not hang every caller: end what is in flight, keep serving
                log.exception("engine step failed; aborting the requests in flight")
                for state in list(self._requests.values()):
                    self._finish_request(state, FinishReason.ABORT)
        for state in list(self._requests.values()):
            self._finish_request(state, FinishReason.ABORT)

    def _admit(self) -> None:
        runner = self.loaded.runner
        while True:
            with self._lock:
                if not self._waiting or self._waiting[0].request.n > runner.free_slots:
                    return
                state = self._waiting.popleft()
            request = state.request
            slots = [runner.allocate() for _ in range(request.n)]
            try:
                logits = runner.prefill(list(request.prompt_ids), slots)
            except Exception:
                for slot in slots:
                    runner.release(slot)
                raise
            self.observer.prompt_tokens(len(request.prompt_ids))
            for index, slot in enumerate(slots):
                state.samples.append(self._new_sample(state, index, slot))
            self._running.extend(state.samples)
            tokens, logprobs = self._pick(state.samples, logits.expand(request.n, -1), offset=0)
            now = time.perf_counter()
            self.observer.time_to_first_token(now - state.arrived)
            for sample, token, logprob in zip(state.samples, tokens.tolist(), logprobs.tolist()):
                sample.last_token_at = now
                self._take(sample, token, logprob)
            self._publish([state])

    def _new_sample(self, state: _Request, index: int, slot: int) -> _Sample:
        request = state.request
        seed = request.sampling.seed
        generator = torch.Generator().manual_seed(seed + index if seed is not None
                                                  else int.from_bytes(os.urandom(8), "little") >> 1)
        tokenizer = self.loaded.tokenizer
        skip = request.skip_special_tokens
        stream = TextStream(lambda ids: tokenizer.decode(ids, skip_special_tokens=skip), request.sampling.stop)
        eos = () if request.sampling.ignore_eos else self.loaded.info.eos_token_ids
        sample = _Sample(state, index, slot, generator, stream, stop_ids=frozenset(eos) | set(
            request.sampling.stop_token_ids))
        if request.sampling.has_penalties:
            vocab = self.loaded.info.vocab_size
            sample.counts = torch.zeros(vocab, dtype=torch.long)
            sample.seen = torch.zeros(vocab, dtype=torch.bool)
            sample.seen[list(request.prompt_ids)] = True
        return sample

    def _step(self) -> None:
        samples = list(self._running)
        runner = self.loaded.runner
        slots = [s.slot for s in samples]
        pending = torch.tensor([s.pending for s in samples])
        if runner.spec_tokens and not 0 < self.config.spec_max_batch < len(samples):
            self._speculative_step(samples, slots, pending)
        else:
            logits = runner.decode(slots, pending)
            tokens, logprobs = self._pick(samples, logits, offset=0)
            for sample, token, logprob in zip(samples, tokens.tolist(), logprobs.tolist()):
                self._take(sample, token, logprob)
        now = time.perf_counter()
        for sample in samples:
            if sample.out_tokens:
                self.observer.inter_token_latency((now - sample.last_token_at) / len(sample.out_tokens))
                sample.last_token_at = now
        self._publish({s.owner.request.request_id: s.owner for s in samples}.values())

    def _speculative_step(self, samples: list[_Sample], slots: list[int], pending: torch.Tensor) -> None:
        runner = self.loaded.runner
        k = runner.spec_tokens
        plain_greedy = all(self._plain_greedy(s) for s in samples)
        if plain_greedy:  # argmax drafts, argmax acceptance: no distributions needed
            def choose(logits: torch.Tensor, step: int) -> tuple[torch.Tensor, None]:
                return logits.argmax(dim=-1), None
        else:
            settings = sampling.row_settings([s.params for s in samples])

            def choose(logits: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
                probs = sampling.probabilities(logits, settings)
                tokens = torch.where(settings.greedy, probs.argmax(dim=-1),
                                     sampling.draw(probs, [s.generator for s in samples]))
                return tokens, probs

        drafts, draft_probs = runner.propose(slots, pending, choose)  # [B, k], [B, k, V] (None if greedy)
        target_logits = runner.verify(slots, pending, drafts)  # [B, k + 1, V]
        if plain_greedy:
            accepted, following = sampling.accept_greedy(drafts, target_logits.argmax(dim=-1))
        else:
            target_probs = self._target_probs(samples, target_logits, drafts)  # [B, k + 1, V]
            accepted, following = zip(*(sampling.accept_drafts(drafts[b], draft_probs[b], target_probs[b],
                                                               sample.generator) for b, sample in enumerate(samples)))
        raw = self._raw_logprobs(samples, target_logits)
        per_position = [0] * k
        for b, sample in enumerate(samples):
            sample.drafted += k
            sample.accepted += accepted[b]
            for j in range(accepted[b]):
                per_position[j] += 1
            for j, token in enumerate(drafts[b, :accepted[b]].tolist() + [following[b]]):
                if self._take(sample, token, float(raw[b, j, token]) if raw is not None else 0.0):
                    break
        runner.commit(slots, list(accepted))
        self.observer.speculation(len(samples) * k, per_position)

    def _plain_greedy(self, sample: _Sample) -> bool:
        """Greedy without penalties or a pending min_tokens mask: the argmax of the raw logits is the token."""
        params = sample.params
        return params.greedy and not params.has_penalties and len(sample.tokens) >= params.min_tokens

    @staticmethod
    def _raw_logprobs(samples: list[_Sample], logits: torch.Tensor) -> torch.Tensor | None:
        """log_softmax of the raw logits when some sample asked for log-probabilities (else None)."""
        if any(s.owner.request.return_logprobs for s in samples):
            return logits.float().log_softmax(dim=-1)
        return None

    def _target_probs(self, samples: list[_Sample], logits: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
        """p_j for every sample and verify position j: the draft prefix d_1..d_{j-1} counts as generated."""
        batch, width, vocab = logits.shape
        rows = [s for s in samples for _ in range(width)]
        flat = self._processed_logits(rows, logits.reshape(batch * width, vocab),
                                      offsets=list(range(width)) * batch, prefixes=[
                                          drafts[b, :j].tolist() for b in range(batch) for j in range(width)])
        settings = sampling.row_settings([s.params for s in rows])
        return sampling.probabilities(flat, settings).reshape(batch, width, vocab)

    def _pick(self, samples: list[_Sample], logits: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per sample from logits [B, V] and its raw log-probability."""
        processed = self._processed_logits(samples, logits, [offset] * len(samples), [[]] * len(samples))
        settings = sampling.row_settings([s.params for s in samples])
        greedy = settings.greedy
        if bool(greedy.all()):
            tokens = processed.argmax(dim=-1)
        else:
            probs = sampling.probabilities(processed, settings)
            tokens = torch.where(greedy, processed.argmax(dim=-1), sampling.draw(probs, [s.generator for s in samples]))
        raw = self._raw_logprobs(samples, logits)
        return tokens, raw.gather(1, tokens[:, None]).squeeze(1) if raw is not None else torch.zeros(len(samples))

    def _processed_logits(self, samples: list[_Sample], logits: torch.Tensor, offsets: list[int],
                          prefixes: list[list[int]]) -> torch.Tensor:
        """Penalties and the min_tokens mask, per row (offsets: tokens assumed generated beyond the sample's,
        prefixes: those tokens, for speculative positions)."""
        logits = logits.float()
        if any(s.params.has_penalties for s in samples):
            vocab = logits.shape[-1]
            seen = torch.stack([_with(s.seen, p, vocab) for s, p in zip(samples, prefixes)])
            counts = torch.stack([_counted(s.counts, p, vocab) for s, p in zip(samples, prefixes)])
            logits = sampling.apply_penalties(
                logits, seen, counts, torch.tensor([s.params.repetition_penalty for s in samples]),
                torch.tensor([s.params.presence_penalty for s in samples]),
                torch.tensor([s.params.frequency_penalty for s in samples]))
        banned_rows = [i for i, (s, o) in enumerate(zip(samples, offsets))
                       if len(s.tokens) + o < s.params.min_tokens]
        if banned_rows:
            banned = torch.zeros_like(logits, dtype=torch.bool)
            for i in banned_rows:
                banned[i, list(samples[i].stop_ids)] = True
            logits = sampling.mask_tokens(logits, banned)
        return logits

    def _take(self, sample: _Sample, token: int, logprob: float) -> bool:
        """Appends a sampled token to its sample; True when the sample has finished."""
        if sample.finish is not None:
            return True
        if sample.first_version < 0:
            sample.first_version = self._version
        sample.last_version = self._version
        sample.tokens.append(token)
        sample.out_tokens.append(token)
        if sample.owner.request.return_logprobs:
            sample.logprobs.append(logprob)
            sample.out_logprobs.append(logprob)
        if sample.counts is not None:
            sample.counts[token] += 1
            sample.seen[token] = True
        sample.out_text.append(sample.text.feed([token]))
        sample.pending = token
        self.observer.completion_tokens(1)
        params = sample.params
        prompt_length = len(sample.owner.request.prompt_ids)
        if token in sample.stop_ids:
            sample.finish = FinishReason.STOP
            sample.matched_stop = self.loaded.tokenizer.decode([token], skip_special_tokens=False)
        elif sample.text.stopped is not None:
            sample.finish, sample.matched_stop = FinishReason.STOP_STRING, sample.text.stopped
        elif len(sample.tokens) >= params.max_tokens or prompt_length + len(sample.tokens) >= self.loaded.info.max_context_tokens:
            sample.finish = FinishReason.LENGTH
        return sample.finish is not None

    def _publish(self, states) -> None:
        """Send each request its new deltas and finished samples; free the finished samples' slots."""
        for state in states:
            items: list[SampleDelta | SampleOutput] = []
            for sample in state.samples:
                if sample.out_tokens:
                    if sample.finish is not None:
                        sample.out_text.append(sample.text.flush())
                    items.append(SampleDelta(sample.index, tuple(sample.out_tokens), tuple(sample.out_logprobs),
                                             "".join(sample.out_text)))
                    sample.out_tokens, sample.out_logprobs, sample.out_text = [], [], []
                if sample.finish is not None and sample.slot >= 0:
                    items.append(self._output(sample))
                    self._retire(sample)
            if items:
                state.emit(items)
            if state.unfinished == 0:
                self._forget(state)

    def _output(self, sample: _Sample) -> SampleOutput:
        request = sample.owner.request
        return SampleOutput(
            index=sample.index, finish_reason=sample.finish, token_ids=tuple(sample.tokens), text=sample.text.text,
            matched_stop=sample.matched_stop, logprobs=tuple(sample.logprobs), prompt_tokens=len(request.prompt_ids),
            spec_draft_tokens=sample.drafted, spec_accepted_tokens=sample.accepted,
            weight_version=max(sample.first_version, 0) if sample.tokens else self._version,
            last_weight_version=sample.last_version if sample.tokens else self._version)

    def _retire(self, sample: _Sample) -> None:
        self.loaded.runner.release(sample.slot)
        sample.slot = -1
        sample.owner.unfinished -= 1
        if sample in self._running:
            self._running.remove(sample)

    def _finish_request(self, state: _Request, reason: FinishReason) -> None:
        """Ends every unfinished sample of a request (abort, shutdown, checkpoint swap)."""
        with self._lock:
            if state in self._waiting:
                self._waiting.remove(state)
        if not state.samples:  # never admitted: n empty samples
            state.emit([SampleOutput(i, reason, (), "", prompt_tokens=len(state.request.prompt_ids),
                                     weight_version=self._version, last_weight_version=self._version)
                        for i in range(state.request.n)])
            state.unfinished = 0
        for sample in state.samples:
            if sample.finish is None:
                sample.finish = reason
        self._publish([state])

    def _forget(self, state: _Request) -> None:
        with self._lock:  # before the caller hears the end, so it can reuse the id at once
            self._requests.pop(state.request.request_id, None)
        state.emit(None)


def _with(seen: torch.Tensor | None, prefix: list[int], vocab: int) -> torch.Tensor:
    """A sample's seen-token mask [V] with a speculative prefix added (all False without penalties)."""
    out = torch.zeros(vocab, dtype=torch.bool) if seen is None else seen.clone() if prefix else seen
    if prefix:
        out[prefix] = True
    return out


def _counted(counts: torch.Tensor | None, prefix: list[int], vocab: int) -> torch.Tensor:
    """A sample's completion-token counts [V] with a speculative prefix added (zeros without penalties)."""
    out = torch.zeros(vocab, dtype=torch.long) if counts is None else counts.clone() if prefix else counts
    for token in prefix:
        out[token] += 1
    return out
