"""What every generation backend takes and gives: requests, sampling parameters, outputs, the `Backend` Protocol.

The library's side of the generation contract (`protos/r1/generation/v1`), without the wire: the service
converts messages to these types and back (`services/generation/convert.py`), the CLI and the trainer use
them in-process. Defaults and ranges are the proto's, which follow vLLM's `SamplingParams` where they
overlap (except `max_tokens`: 256). `validate()` raises `InvalidArgument` naming the field as the proto does
(`sampling.top_p`, `n`, `prompt`), so a bad request is refused the same way by every backend.

Backends (`BACKENDS` in `r1/engine/__init__.py`): our torch engine (`torch_engine.py`), and adapters over a
vLLM (`vllm.py`) or SGLang (`sglang.py`) server. A backend streams, per request, `SampleDelta`s (new tokens
of one sample) and exactly one `SampleOutput` per sample, after that sample's last delta.
"""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from r1.errors import InvalidArgument

MAX_STOP_STRINGS = 16
MAX_SAMPLES = 1024  # n above this is refused: a GRPO group or pass@k never needs more


@dataclass(frozen=True)
class SamplingParams:
    """temperature >= 0 (0: greedy; top_p, top_k, min_p then ignored); top_p in (0, 1]; top_k >= 0 (0: off);
    min_p in [0, 1]; max_tokens >= 1; seed: sample i uses seed + i (None: nondeterministic); stop: up to 16
    strings, not included in the text; stop_token_ids: extra ids that end a sample like eos; ignore_eos;
    min_tokens: eos and stop ids are masked until this many tokens exist; repetition_penalty > 0 (1: off,
    on prompt and completion tokens); presence_penalty and frequency_penalty in [-2, 2] (completion tokens)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    min_tokens: int = 0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def has_penalties(self) -> bool:
        return self.repetition_penalty != 1.0 or self.presence_penalty != 0.0 or self.frequency_penalty != 0.0

    def validate(self, prefix: str = "sampling") -> None:
        def bad(name: str, why: str) -> InvalidArgument:
            return InvalidArgument(f"{prefix}.{name}", f"{why}, got {getattr(self, name)!r}")

        for name in ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty",
                     "frequency_penalty"):
            if not math.isfinite(getattr(self, name)):
                raise bad(name, "must be a finite number")
        if self.temperature < 0:
            raise bad("temperature", "must be >= 0 (0 is greedy)")
        if not 0 < self.top_p <= 1:
            raise bad("top_p", "must be in (0, 1] (1 is off)")
        if self.top_k < 0:
            raise bad("top_k", "must be >= 0 (0 is off)")
        if not 0 <= self.min_p <= 1:
            raise bad("min_p", "must be in [0, 1] (0 is off)")
        if self.max_tokens < 1:
            raise bad("max_tokens", "must be >= 1")
        if self.min_tokens < 0 or self.min_tokens > self.max_tokens:
            raise bad("min_tokens", f"must be in [0, max_tokens = {self.max_tokens}]")
        if self.seed is not None and not 0 <= self.seed < 2 ** 63:
            raise bad("seed", "must be in [0, 2^63)")
        if len(self.stop) > MAX_STOP_STRINGS:
            raise InvalidArgument(f"{prefix}.stop", f"at most {MAX_STOP_STRINGS} strings, got {len(self.stop)}")
        if any(not s for s in self.stop):
            raise InvalidArgument(f"{prefix}.stop", "stop strings must be non-empty")
        if self.repetition_penalty <= 0:
            raise bad("repetition_penalty", "must be > 0 (1 is off)")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                raise bad(name, "must be in [-2, 2] (0 is off)")


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (token ids, used verbatim) and n samples of it. request_id: unique among in-flight
    requests (abort uses it); return_logprobs: the raw model log-probability of each sampled token
    (log_softmax of the unmodified logits); skip_special_tokens: leave specials out of decoded text."""

    request_id: str
    prompt_ids: tuple[int, ...]
    n: int = 1
    sampling: SamplingParams = field(default_factory=SamplingParams)
    return_logprobs: bool = False
    skip_special_tokens: bool = True

    def validate(self, vocab_size: int, max_context_tokens: int) -> None:
        """InvalidArgument naming the field when the request cannot be served by a model with this vocabulary
        and context window."""
        if not self.prompt_ids:
            raise InvalidArgument("prompt", "is empty: send at least one token (or non-empty text)")
        if len(self.prompt_ids) >= max_context_tokens:
            raise InvalidArgument("prompt", f"has {len(self.prompt_ids)} tokens; the context window is "
                                            f"{max_context_tokens}, so at most {max_context_tokens - 1} leave "
                                            f"room for one new token")
        bad = [(i, t) for i, t in enumerate(self.prompt_ids) if not 0 <= t < vocab_size]
        if bad:
            i, t = bad[0]
            raise InvalidArgument(f"prompt.token_ids[{i}]", f"token id {t} is outside the vocabulary "
                                                            f"[0, {vocab_size}) ({len(bad)} such ids)")
        if not 1 <= self.n <= MAX_SAMPLES:
            raise InvalidArgument("n", f"must be in [1, {MAX_SAMPLES}], got {self.n}")
        self.sampling.validate()
        bad_stops = [t for t in self.sampling.stop_token_ids if not 0 <= t < vocab_size]
        if bad_stops:
            raise InvalidArgument("sampling.stop_token_ids", f"ids {bad_stops} are outside the vocabulary "
                                                             f"[0, {vocab_size})")


class FinishReason(enum.Enum):
    STOP = "stop"  # eos or a stop token id; the token is the last of token_ids
    STOP_STRING = "stop_string"  # a stop string matched; see matched_stop
    LENGTH = "length"  # max_tokens, or the context window is full
    ABORT = "abort"  # aborted, cancelled, or the server is shutting down


@dataclass(frozen=True)
class SampleDelta:
    """New tokens of sample `index` since its previous delta; `text` is the decoded text they complete
    (may be "" while a UTF-8 character or a possible stop string is held back)."""

    index: int
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class SampleOutput:
    """A finished sample. text: the decoded completion without the matched stop string; token_ids: every
    generated token (the stop token included for STOP); weight_version / last_weight_version: the versions
    that produced its first and last token; spec_*: speculative decoding counts for this sample."""

    index: int
    finish_reason: FinishReason
    token_ids: tuple[int, ...]
    text: str
    matched_stop: str = ""
    logprobs: tuple[float, ...] = ()
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    spec_draft_tokens: int = 0
    spec_accepted_tokens: int = 0
    weight_version: int = 0
    last_weight_version: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """What a backend serves (the proto's ModelInfo, field for field)."""

    model_id: str
    architecture: str
    backend: str
    weight_version: int
    eos_token_ids: tuple[int, ...]
    bos_token_id: int | None
    pad_token_id: int | None
    max_context_tokens: int
    vocab_size: int
    mtp_depth: int = 0
    spec_tokens: int = 0
    dtype: str = "float32"
    checkpoint: str = ""
    parameter_count: int = 0


@runtime_checkable
class Backend(Protocol):
    """A generation backend. All methods are called from one asyncio event loop.

    generate: streams SampleDelta / SampleOutput for a validated request (raises InvalidArgument before the
        first item when the request is bad, AlreadyExists for a request_id in flight, ResourceExhausted
        when the backend's queue is full). Cancelling the iteration aborts the request's samples.
    abort: ends an in-flight request's samples with FinishReason.ABORT; False when no such request runs.
    tokenize / detokenize: the served tokenizer.
    update_weights: replaces the named parameters (Hugging Face checkpoint names) with these tensors,
        checked first (unknown name, shape: InvalidArgument, nothing applied), swapped in between two
        decode steps; returns the number of tensors replaced. version must exceed the served one
        (FailedPrecondition otherwise).
    load_checkpoint: loads a full checkpoint (a directory or hub id) and serves it as `version`.
    """

    @property
    def info(self) -> ModelInfo: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[SampleDelta | SampleOutput]: ...

    async def abort(self, request_id: str) -> bool: ...

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def detokenize(self, token_ids: list[int], skip_special_tokens: bool = True) -> str: ...

    async def update_weights(self, version: int, tensors: Mapping[str, object]) -> int: ...

    async def load_checkpoint(self, path: str, version: int, revision: str | None = None) -> ModelInfo: ...
