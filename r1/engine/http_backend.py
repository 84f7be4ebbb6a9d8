"""What the vLLM and SGLang adapters share: config, HTTP and its errors, SSE, samples, aborts, staged weights.

Their config; an HTTP client that turns every failure into an `r1.errors` exception; SSE reading; per-sample
bookkeeping; in-flight requests and their aborts; the safetensors checkpoints staged for weight updates.

Choices:
- One `httpx.AsyncClient` per backend, with keep-alive and a bounded pool; every call of one backend comes
  from one asyncio loop. `tokenize` / `detokenize` are synchronous in the `Backend` Protocol, so without a
  local tokenizer they use a second, synchronous client and block the loop for one round trip (the service
  tokenizes text prompts only; token-id prompts never touch it).
- Errors say which server, which endpoint, what it said and what to do: unreachable or timed out ->
  `Unavailable` naming the start command and the config key; 400/422 -> `InvalidArgument` quoting the server;
  401/403 -> `FailedPrecondition` about the API key; 404 -> `FailedPrecondition` with the endpoint's own hint
  (dev-mode endpoints, versions); 429 -> `ResourceExhausted`; 503 and other statuses -> `Unavailable`.
- A request's HTTP streams are read by tasks that feed one queue (`Flight`); `abort` cancels them, which
  closes the connections (both engines abort a request whose client went away), and the samples still
  running end with `FinishReason.ABORT` and the tokens received so far.
- Sample text is cumulative on our side: a delta gives out the server's text minus the last
  (longest stop string - 1) characters until the sample finishes, so a stop string the server trims at the
  end is never handed out first; the final delta releases the rest of the server's final text.
- `update_weights` stages the named tensors as `<weight_dir>/v<version>/model.safetensors` (plus the served
  checkpoint's config.json / generation_config.json when the tokenizer directory has them), checks names
  and shapes first against the served checkpoint's safetensors headers when that directory has them, and
  keeps the last `keep_staged` versions.

Not done: retries (a failed call is reported, the caller decides), request batching across requests (the
engines batch themselves), weights sent over NCCL or CUDA IPC (see the adapters' docstrings).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from r1.engine.types import FinishReason, SampleDelta, SampleOutput
from r1.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, R1Error, ResourceExhausted,
                       Unavailable)

log = logging.getLogger(__name__)

UNKNOWN_VOCAB = 2 ** 31  # validation bound when the vocabulary size is unknown: the server checks ids itself
WEIGHTS_FILE = "model.safetensors"
COPIED_CONFIGS = ("config.json", "generation_config.json")


@dataclass(frozen=True)
class EngineServerConfig:
    """How to reach one engine server (the generation service's `engine.vllm` or `engine.sglang` section)."""

    base_url: str = ""
    """The server's address with scheme and port, e.g. http://vllm:8000 or http://sglang:30000 (no /v1)."""
    api_key: str = ""
    """Sent as `Authorization: Bearer <key>`: the key the server was started with (--api-key); "" sends none."""
    model: str = ""
    """The served model name (vLLM --served-model-name, SGLang --served-model-name); "" takes the first one
    the server lists."""
    tokenizer: str = ""
    """A local directory with the served model's tokenizer, usually its checkpoint directory: tokenize /
    detokenize run here, and its config.json / generation_config.json give the vocabulary size, eos / bos /
    pad ids, architecture and MTP depth. "" uses the server's /tokenize and /detokenize endpoints and leaves
    token-id range checks to the server."""
    timeout_s: float = 300.0
    """Seconds to wait to connect, and for each next piece of a response (a long stream may take longer)."""
    max_connections: int = 256
    """Concurrent HTTP connections to the server (each in-flight stream holds one)."""
    weight_dir: str = ""
    """A directory on a volume the server also mounts, where update_weights stages one safetensors checkpoint
    per version; "" refuses update_weights."""
    server_weight_dir: str = ""
    """weight_dir as the server sees it, when it is mounted at another path there; "" means the same path."""
    keep_staged: int = 2
    """Staged versions kept in weight_dir; older ones are deleted after a successful reload."""
    max_context_tokens: int = 0
    """Prompt + completion limit to serve; 0 takes the server's (vLLM max_model_len, SGLang context_length)."""
    weight_version: int = 0
    """The version the server's startup weights are served as."""


# ------------------------------------------------------------------------------------------------- HTTP


class EngineHTTP:
    """The HTTP side of one adapter: JSON calls, SSE streams, and the mapping of failures to r1.errors."""

    def __init__(self, engine: str, section: str, config: EngineServerConfig, start_hint: str):
        if not config.base_url:
            raise FailedPrecondition(f"{section}.base_url is empty: set it to the {engine} server's address, "
                                     f"e.g. http://localhost:8000, after starting it with `{start_hint}`")
        self.engine, self.section, self.start_hint = engine, section, start_hint
        self.base_url = config.base_url.rstrip("/")
        self.timeout_s = config.timeout_s
        self.max_connections = config.max_connections
        self._headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        limits = httpx.Limits(max_connections=config.max_connections,
                              max_keepalive_connections=min(64, config.max_connections))
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers,
                                         timeout=httpx.Timeout(config.timeout_s), limits=limits)
        self._sync: httpx.Client | None = None

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._sync is not None:
            self._sync.close()

    async def get(self, path: str, *, hint: str = "") -> Any:
        try:
            response = await self._client.get(path)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, path) from exc
        return self._result(response, path, hint, InvalidArgument)

    async def post(self, path: str, body: Any = None, *, hint: str = "",
                   refused: type[R1Error] = InvalidArgument) -> Any:
        """POST `body` as JSON; the decoded JSON answer (None for an empty one). A 400/422 raises `refused`."""
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, path) from exc
        return self._result(response, path, hint, refused)

    def post_sync(self, path: str, body: Any) -> Any:
        if self._sync is None:
            self._sync = httpx.Client(base_url=self.base_url, headers=self._headers,
                                      timeout=httpx.Timeout(self.timeout_s))
        try:
            response = self._sync.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, path) from exc
        return self._result(response, path, "", InvalidArgument)

    async def stream(self, path: str, body: Any) -> AsyncIterator[Any]:
        """POST `body` and yield the JSON of each SSE `data:` line until `data: [DONE]`."""
        try:
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self.status_error(response.status_code, _server_message(response), path, "",
                                            InvalidArgument)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event names
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    yield self._stream_item(data, path)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, path) from exc
        raise self.protocol_error(f"a stream from {path} that ended without `data: [DONE]`")

    def _stream_item(self, data: str, path: str) -> Any:
        try:
            item = json.loads(data)
        except json.JSONDecodeError as exc:
            raise self.protocol_error(f"an SSE line from {path} that is not JSON: {data[:200]!r}") from exc
        if isinstance(item, dict) and "error" in item:
            error = item["error"]
            status = error.get("code", 400) if isinstance(error, dict) else 400
            raise self.status_error(status if isinstance(status, int) else 400, _message_of(item), path, "",
                                    InvalidArgument)
        return item

    def _result(self, response: httpx.Response, path: str, hint: str, refused: type[R1Error]) -> Any:
        if response.status_code >= 300:
            raise self.status_error(response.status_code, _server_message(response), path, hint, refused)
        if not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text

    # ------------------------------------------------------------------------------------------ errors

    def transport_error(self, exc: httpx.HTTPError, path: str) -> R1Error:
        where = f"{self.engine} server at {self.base_url}"
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return Unavailable(f"{where} is unreachable ({exc or type(exc).__name__}): start it with "
                               f"`{self.start_hint}` or fix {self.section}.base_url")
        if isinstance(exc, httpx.PoolTimeout):
            return ResourceExhausted(f"all {self.max_connections} connections to the {where} are busy: "
                                     f"back off, or raise {self.section}.max_connections")
        if isinstance(exc, httpx.TimeoutException):
            return Unavailable(f"{where} did not answer {path} within {self.timeout_s:g} s: it may be overloaded "
                               f"or stuck; raise {self.section}.timeout_s if such gaps are expected")
        return Unavailable(f"the connection to the {where} failed during {path}: {exc!r}")

    def status_error(self, status: int, message: str, path: str, hint: str,
                     refused: type[R1Error]) -> R1Error:
        where = f"the {self.engine} server at {self.base_url} ({path})"
        tail = f"; {hint}" if hint else ""
        if status in (400, 422):
            text = f"{where} refused the request: {message}{tail}"
            return InvalidArgument("request", text) if refused is InvalidArgument else refused(text)
        if status in (401, 403):
            return FailedPrecondition(f"{where} rejected the API key (HTTP {status}: {message}): set "
                                      f"{self.section}.api_key to the key the server was started with")
        if status == 404:
            return FailedPrecondition(f"{where} answered 404 ({message}){tail}")
        if status == 429:
            return ResourceExhausted(f"{where} is overloaded (429: {message}): back off and retry")
        if status == 503:
            return Unavailable(f"{where} is not ready or overloaded (503: {message}): retry once its /health "
                               f"answers 200")
        return Unavailable(f"{where} failed with HTTP {status}: {message}{tail}")

    def protocol_error(self, what: str) -> FailedPrecondition:
        return FailedPrecondition(f"the {self.engine} server at {self.base_url} sent {what}; this adapter "
                                  f"speaks {self.engine}'s documented HTTP API: check the server's version")


def _server_message(response: httpx.Response) -> str:
    try:
        return _message_of(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:500] or response.reason_phrase


def _message_of(body: Any) -> str:
    """The human part of an error body: {"error": {"message"}}, {"error": str}, {"message"}, {"detail"}."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "detail"):
            if key in body:
                return str(body[key])
    return json.dumps(body)[:500]


# ------------------------------------------------------------------------------------------ requests


_END = object()
_ABORT = object()


class Flight:
    """One in-flight request: reader tasks (one per HTTP stream) feed one queue; `abort` stops them."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.samples: list[SampleState] = []
        self.aborted = False
        self._queue: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []

    def start(self, streams: list[AsyncIterator[Any]]) -> None:
        self._tasks = [asyncio.create_task(self._pump(i, s)) for i, s in enumerate(streams)]

    async def _pump(self, index: int, stream: AsyncIterator[Any]) -> None:
        try:
            async for item in stream:
                self._queue.put_nowait((index, item))
            self._queue.put_nowait((index, _END))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which raises it
            self._queue.put_nowait((index, exc))

    async def events(self) -> AsyncIterator[tuple[int, Any]]:
        """(stream index, JSON item) in arrival order; (index, None) when that stream has ended. Returns when
        every stream has ended or the request was aborted; raises what a stream raised."""
        open_streams = len(self._tasks)
        while open_streams:
            index, item = await self._queue.get()
            if item is _ABORT:
                return
            if item is _END:
                open_streams -= 1
                yield index, None
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item

    def abort(self) -> None:
        self.aborted = True
        self._cancel()
        self._queue.put_nowait((-1, _ABORT))

    def _cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def stop(self) -> None:
        """Cancel the readers and wait until they are gone (their connections closed)."""
        self._cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Flights:
    """The requests in flight, by request_id."""

    def __init__(self):
        self._by_id: dict[str, Flight] = {}

    def open(self, request_id: str) -> Flight:
        if request_id in self._by_id:
            raise AlreadyExists(f"request_id {request_id!r} is already in flight; use a unique id")
        flight = self._by_id[request_id] = Flight(request_id)
        return flight

    def get(self, request_id: str) -> Flight | None:
        return self._by_id.get(request_id)

    def all(self) -> list[Flight]:
        return list(self._by_id.values())

    def close(self, flight: Flight) -> None:
        if self._by_id.get(flight.request_id) is flight:
            del self._by_id[flight.request_id]


@dataclass
class SampleState:
    """What has been received of one sample, and what has been handed out."""

    index: int
    holdback: int = 0  # characters held back while a stop string may be forming
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""  # the server's text so far
    given: str = ""  # the prefix of `text` handed out in deltas
    first_version: int | None = None
    last_version: int = 0
    finish: FinishReason | None = None
    matched_stop: str = ""
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    spec_draft_tokens: int = 0
    spec_accepted_tokens: int = 0
    reported: bool = False  # its SampleOutput has been handed out

    def advance(self, tokens: list[int], logprobs: list[float], text: str, version: int,
                final: bool) -> SampleDelta | None:
        """Take new tokens and the server's cumulative text; the delta to hand out, if any."""
        if tokens:
            if self.first_version is None:
                self.first_version = version
            self.last_version = version
        self.tokens.extend(tokens)
        self.logprobs.extend(logprobs)
        self.text = text
        piece = ""
        if text.startswith(self.given):
            end = len(text) if final else max(len(self.given), len(text) - self.holdback)
            piece = text[len(self.given):end]
            self.given += piece
        if not tokens and not piece:
            return None
        return SampleDelta(self.index, tuple(tokens), tuple(logprobs), piece)

    def flush(self) -> SampleDelta | None:
        """The held-back text of a sample cut short (aborted): nothing more will come to complete a stop
        string, so it is part of the completion."""
        if not self.text.startswith(self.given) or self.text == self.given:
            return None
        piece, self.given = self.text[len(self.given):], self.text
        return SampleDelta(self.index, (), (), piece)

    def end(self, reason: FinishReason, matched_stop: str = "") -> None:
        self.finish, self.matched_stop = reason, matched_stop

    def output(self, version: int) -> SampleOutput:
        """The finished sample (ABORT when it had not finished); `version` is the one served now."""
        self.reported = True
        first = self.first_version if self.first_version is not None else version
        last = self.last_version if self.first_version is not None else version
        return SampleOutput(
            index=self.index, finish_reason=self.finish or FinishReason.ABORT, token_ids=tuple(self.tokens),
            text=self.text, matched_stop=self.matched_stop,
            logprobs=tuple(self.logprobs), prompt_tokens=self.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens, spec_draft_tokens=self.spec_draft_tokens,
            spec_accepted_tokens=self.spec_accepted_tokens, weight_version=first, last_weight_version=last)


def closing_items(samples: list[SampleState], version: int) -> list[SampleDelta | SampleOutput]:
    """After an abort: the rest of each unreported sample's text, then its output (ABORT unless it had
    finished)."""
    items: list[SampleDelta | SampleOutput] = []
    for sample in samples:
        if not sample.reported:
            rest = None if sample.finish else sample.flush()
            items += [rest, sample.output(version)] if rest else [sample.output(version)]
    return items


def new_samples(n: int, stop: tuple[str, ...], prompt_tokens: int) -> list[SampleState]:
    holdback = max((len(s) for s in stop), default=1) - 1
    return [SampleState(index=i, holdback=holdback, prompt_tokens=prompt_tokens) for i in range(n)]


def completion_budget(prompt_tokens: int, max_tokens: int, max_context_tokens: int) -> int:
    """max_tokens, capped so that prompt + completion fit the context window (the cap ends as LENGTH)."""
    return max(1, min(max_tokens, max_context_tokens - prompt_tokens))


# ------------------------------------------------------------------------------------- local model files


@dataclass(frozen=True)
class LocalModel:
    """What a local checkpoint / tokenizer directory says about the served model."""

    tokenizer: Any = None
    vocab_size: int = 0
    eos_token_ids: tuple[int, ...] = ()
    bos_token_id: int | None = None
    pad_token_id: int | None = None
    architecture: str = ""
    mtp_depth: int = 0
    dtype: str = ""


def read_local_model(directory: str, section: str) -> LocalModel:
    """config.json, generation_config.json and the tokenizer (when tokenizer.json is there) of `directory`."""
    path = Path(directory)
    if not path.is_dir():
        raise FailedPrecondition(f"{section}.tokenizer: no directory at {directory!r}; point it at the served "
                                 f"model's checkpoint (or tokenizer) directory, or set it to \"\"")
    config = _read_json(path / "config.json")
    generation = _read_json(path / "generation_config.json")
    tokenizer = None
    if (path / "tokenizer.json").is_file():
        from r1.model.tokenizer import load_tokenizer  # transformers: imported only when a tokenizer is given
        tokenizer = load_tokenizer(path)
    eos = generation.get("eos_token_id", config.get("eos_token_id"))
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    eos_ids = tuple(eos) if isinstance(eos, list) else (() if eos is None else (int(eos),))
    vocab = config.get("vocab_size") or (len(tokenizer) if tokenizer is not None else 0)
    architectures = config.get("architectures") or [""]
    return LocalModel(
        tokenizer=tokenizer, vocab_size=int(vocab), eos_token_ids=eos_ids,
        bos_token_id=_first(generation.get("bos_token_id"), config.get("bos_token_id"),
                            getattr(tokenizer, "bos_token_id", None)),
        pad_token_id=_first(generation.get("pad_token_id"), config.get("pad_token_id"),
                            getattr(tokenizer, "pad_token_id", None)),
        architecture=str(architectures[0]), mtp_depth=int(config.get("num_nextn_predict_layers") or 0),
        dtype=str(config.get("torch_dtype") or config.get("dtype") or ""))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _first(*values: Any) -> int | None:
    return next((int(v) for v in values if isinstance(v, int) and not isinstance(v, bool)), None)


# -------------------------------------------------------------------------------------- staged weights


def checkpoint_shapes(directory: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from the safetensors headers in `directory` (no tensor data is read); {} when
    there are none."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(Path(directory).glob("*.safetensors")) if directory else ():
        with file.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        shapes.update({name: tuple(meta["shape"]) for name, meta in header.items() if name != "__metadata__"})
    return shapes


def check_tensors(tensors: Mapping[str, object], reference: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """The tensors as contiguous CPU torch tensors, after checking names and shapes against `reference`
    (when it is not empty); InvalidArgument naming the first bad one."""
    import torch

    if not tensors:
        raise InvalidArgument("tensors", "is empty: send at least one named tensor")
    checked: dict[str, Any] = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise InvalidArgument(f"tensors[{name!r}]", f"must be a torch.Tensor, got {type(tensor).__name__}")
        if reference and name not in reference:
            raise InvalidArgument(f"tensors[{name!r}]", "is not a parameter of the served checkpoint; names are "
                                                         "its Hugging Face names, e.g. 'model.norm.weight'")
        if reference and tuple(tensor.shape) != reference[name]:
            raise InvalidArgument(f"tensors[{name!r}]", f"has shape {list(tensor.shape)}; the served "
                                                         f"checkpoint's is {list(reference[name])}")
        checked[name] = tensor.detach().to("cpu").contiguous()
    return _unshared(checked)


def _unshared(tensors: dict[str, Any]) -> dict[str, Any]:
    """Copies of tensors that share storage with an earlier one (safetensors refuses shared memory)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        out[name] = tensor.clone() if pointer in seen and tensor.numel() else tensor
        seen.add(pointer)
    return out


def stage_checkpoint(weight_dir: str, version: int, tensors: dict[str, Any], template_dir: str) -> Path:
    """Write `tensors` as <weight_dir>/v<version>/model.safetensors (atomically: written beside, then
    renamed), with the template's config files copied in; the directory."""
    from safetensors.torch import save_file

    target = Path(weight_dir) / f"v{version:012d}"
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file(tensors, str(partial / WEIGHTS_FILE), metadata={"format": "pt", "r1_weight_version": str(version)})
    for name in COPIED_CONFIGS:
        source = Path(template_dir) / name if template_dir else None
        if source is not None and source.is_file():
            shutil.copyfile(source, partial / name)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def prune_staged(weight_dir: str, keep: int) -> None:
    """Delete all but the newest `keep` staged versions."""
    staged = sorted(p for p in Path(weight_dir).glob("v*") if p.is_dir() and not p.name.endswith(".partial"))
    for old in staged[:max(0, len(staged) - max(keep, 1))]:
        shutil.rmtree(old, ignore_errors=True)


def server_path(config: EngineServerConfig, staged: Path) -> str:
    """Where the server finds a staged directory (server_weight_dir replaces weight_dir)."""
    if not config.server_weight_dir:
        return str(staged)
    return str(Path(config.server_weight_dir) / staged.relative_to(config.weight_dir))


def weights_precondition(config: EngineServerConfig, section: str, version: int, served: int) -> None:
    if version <= served:
        raise FailedPrecondition(f"version {version} must be greater than the served {served}")
    if not config.weight_dir:
        raise FailedPrecondition(f"{section}.weight_dir is empty: set it to a directory on a volume the engine "
                                 f"server also mounts, where weight updates are staged as safetensors")
