"""Fake vLLM and SGLang servers: real HTTP on 127.0.0.1, speaking the request and response shapes they document.

Each runs in a thread on port 0, so the adapters are tested over the wire.

What is faithful: the endpoints, field names and types, SSE framing (`data: {...}` lines, `data: [DONE]`),
vLLM's delta chunks (one choice per chunk, choices of one request interleaved, text held back while a stop
string may form, a last chunk with no choices and `usage`), SGLang's cumulative chunks (`text`,
`output_ids`, `meta_info.output_token_logprobs` grow; an `index` per sample; the stop string trimmed from
the text only at the end), finish reasons and their stop_reason / matched values, error bodies and
statuses, the API-key check, the dev-mode gate of vLLM's weight endpoints, and weight reloads that read the
staged safetensors files.

Where the fakes are stricter than the engines, on purpose: unknown request keys are refused with a 400
naming them (vLLM only logs a warning for unknown keys, SGLang's SamplingParams raises on them), so a
misspelt field cannot go unnoticed. SGLang's `sampling_params.n` > 1 is refused: the adapter must send n
samples as a batch.

The "model": token id t >= 3 decodes to one letter, ALPHABET[(t - 3) % 26]; 0 (bos), 1 (eos) and 2 (pad)
are special and decode to "". A sample's tokens come from `fake.scripts[key]` (key = seed + i when the
sample is seeded, else its index i), else from a generator seeded by that key; generation stops as the
engines do: eos (unless ignore_eos), a stop token id, a stop string (its tokens kept, the text cut before
it), max_tokens. `hold_after = k` makes a stream stop after k chunks and wait for the client to go away
(vLLM) or for /abort_request (SGLang), so aborts can be tested; `disconnected` is set when a held stream's
client closed the connection.
"""

from __future__ import annotations

import json
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
BOS, EOS, PAD = 0, 1, 2
VOCAB = 64
CHUNK_TOKENS = 2  # tokens per streamed chunk
HOLD_LIMIT_S = 10.0  # a held stream gives up after this long, so a broken test cannot hang


def decode(ids: list[int], skip_special: bool = True) -> str:
    return "".join(ALPHABET[(t - 3) % 26] if t >= 3 else ("" if skip_special else f"<{t}>") for t in ids)


def encode(text: str, add_special: bool = True) -> list[int]:
    return ([BOS] if add_special else []) + [3 + ALPHABET.index(c) for c in text if c in ALPHABET]


def logprob(position: int, token: int) -> float:
    return -round(0.05 * (position + 1) + 0.001 * token, 6)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


@dataclass
class Generated:
    tokens: list[int]
    text: str  # final text (a matched stop string cut off)
    finish: str  # "stop" | "length"
    matched: str | int | None  # the stop string, the stop token id, eos's id (SGLang) or None (vLLM eos)


def generate(prompt: list[int], script: list[int] | None, key: int, max_tokens: int, stop: list[str],
             stop_ids: list[int], ignore_eos: bool, min_tokens: int) -> Generated:
    rng = random.Random(f"{key}-{prompt[-1]}")
    tokens: list[int] = []
    while len(tokens) < max_tokens:
        k = len(tokens)
        token = script[k] if script is not None and k < len(script) else rng.randrange(3, VOCAB)
        tokens.append(token)
        may_stop = len(tokens) >= min_tokens
        if may_stop and token == EOS and not ignore_eos:
            return Generated(tokens, decode(tokens), "stop", EOS)
        if may_stop and token in stop_ids:
            return Generated(tokens, decode(tokens), "stop", token)
        text = decode(tokens)
        hits = [(text.find(s), s) for s in stop if s in text]
        if hits:
            where, string = min(hits)
            return Generated(tokens, text[:where], "stop", string)
    return Generated(tokens, decode(tokens), "length", None)


def read_safetensors_names(directory: str) -> dict[str, list[int]]:
    files = sorted(Path(directory).glob("*.safetensors")) if Path(directory).is_dir() else []
    if not files:
        raise BadRequest(f"no safetensors files found in {directory}")
    names: dict[str, list[int]] = {}
    for file in files:
        raw = file.read_bytes()
        (size,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + size])
        names.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return names


# ------------------------------------------------------------------------------------------ plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # a client that went away mid-request
            pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        fake.record(method, path, dict(self.headers), body)
        try:
            if not isinstance(body, (dict, type(None))):
                raise BadRequest("the body is not a JSON object")
            if fake.api_key and fake.guarded(path) and \
                    self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                return self.send_json(401, {"error": "Unauthorized"})
            route = fake.routes().get((method, path))
            if route is None:
                return self.send_json(404, {"detail": "Not Found"})
            route(self, body or {})
        except BadRequest as exc:
            self.send_json(exc.status, fake.error_body(str(exc), exc.status, exc.param))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_json(self, status: int, obj: Any) -> None:
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def sse(self, obj: Any) -> None:
        self._chunk(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")

    def sse_done(self) -> None:
        self.sse(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def wait_gone(self, until=lambda: False) -> bool:
        """Block until the client closes the connection (True) or `until()` holds (False)."""
        deadline = time.monotonic() + HOLD_LIMIT_S
        while time.monotonic() < deadline and not until():
            ready, _, _ = select.select([self.connection], [], [], 0.01)
            if ready:
                try:
                    gone = not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    gone = True
                if gone:
                    return True
        return False


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 that records every request; subclasses add the routes."""

    def __init__(self, *, api_key: str = "", max_model_len: int = 128, served: str = "teacher",
                 root: str = "/models/teacher", cached_tokens: int = 0):
        self.api_key, self.max_model_len, self.served, self.root = api_key, max_model_len, served, root
        self.cached_tokens = cached_tokens
        self.scripts: dict[int, list[int]] = {}
        self.hold_after: int | None = None
        self.disconnected = threading.Event()
        self.calls: list[tuple[str, str, dict, Any]] = []
        self.reloads: list[dict[str, list[int]]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def record(self, method: str, path: str, headers: dict, body: Any) -> None:
        with self._lock:
            self.calls.append((method, path, headers, body))

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [body for _, p, _, body in self.calls if p == path]

    def paths(self) -> list[str]:
        with self._lock:
            return [p for _, p, _, _ in self.calls]

    def guarded(self, path: str) -> bool:
        return True

    def routes(self) -> dict:
        raise NotImplementedError

    def error_body(self, message: str, status: int, param: str | None) -> dict:
        raise NotImplementedError

    def script_for(self, key: int) -> list[int] | None:
        return self.scripts.get(key)


def _check(body: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"{where}: unknown field(s) {unknown}", param=unknown[0])


def _want(body: dict, name: str, ok, why: str) -> None:
    if name in body and body[name] is not None and not ok(body[name]):
        raise BadRequest(f"{name} {why}, got {body[name]!r}", param=name)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ids(v: Any) -> bool:
    return isinstance(v, list) and all(_is_int(t) for t in v)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


# ---------------------------------------------------------------------------------------------- vLLM

VLLM_COMPLETION_FIELDS = {  # vllm/entrypoints/openai/completion/protocol.py: CompletionRequest
    "model", "prompt", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
    "presence_penalty", "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user",
    "use_beam_search", "top_k", "min_p", "repetition_penalty", "watermarking", "length_penalty",
    "stop_token_ids", "include_stop_str_in_output", "ignore_eos", "min_tokens", "skip_special_tokens",
    "spaces_between_special_tokens", "truncate_prompt_tokens", "truncation_side", "allowed_token_ids",
    "prompt_logprobs", "logprob_token_ids", "bad_words", "prompt_embeds", "add_special_tokens",
    "response_format", "structured_outputs", "priority", "request_id", "session_id", "return_tokens_as_token_ids",
    "return_token_ids", "routed_experts_prompt_start", "return_token_offsets", "return_mm_kwargs", "cache_salt",
    "kv_transfer_params", "ec_transfer_params", "vllm_xargs", "repetition_detection", "thinking_token_budget",
    "stream_interval"}
VLLM_RPC_METHODS = {"update_config", "reload_weights"}


class FakeVLLM(FakeServer):
    """`vllm serve` as seen over HTTP: /health, /v1/models, /v1/completions, /tokenize, /detokenize, and in dev
    mode /collective_rpc (update_config, reload_weights) and /reset_prefix_cache."""

    def __init__(self, *, dev_mode: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dev_mode = dev_mode
        self.model_path = self.root

    def guarded(self, path: str) -> bool:
        return path.startswith("/v1")  # vLLM's --api-key protects /v1 routes

    def error_body(self, message: str, status: int, param: str | None) -> dict:
        kinds = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}
        return {"error": {"message": message, "type": kinds.get(status, "Error"), "param": param, "code": status}}

    def routes(self) -> dict:
        routes = {("GET", "/health"): lambda h, b: h.send_json(200, None),
                  ("GET", "/v1/models"): self._models, ("POST", "/v1/completions"): self._completions,
                  ("POST", "/tokenize"): self._tokenize, ("POST", "/detokenize"): self._detokenize}
        if self.dev_mode:
            routes[("POST", "/collective_rpc")] = self._collective_rpc
            routes[("POST", "/reset_prefix_cache")] = lambda h, b: h.send_json(200, None)
        return routes

    def _models(self, h: _Handler, body: dict) -> None:
        h.send_json(200, {"object": "list", "data": [{
            "id": self.served, "object": "model", "created": 0, "owned_by": "vllm", "root": self.root,
            "parent": None, "max_model_len": self.max_model_len, "permission": []}]})

    def _tokenize(self, h: _Handler, body: dict) -> None:
        _check(body, {"model", "prompt", "add_special_tokens", "return_token_strs"}, "TokenizeCompletionRequest")
        tokens = encode(body["prompt"], body.get("add_special_tokens", True))
        h.send_json(200, {"count": len(tokens), "max_model_len": self.max_model_len, "tokens": tokens,
                          "token_strs": None})

    def _detokenize(self, h: _Handler, body: dict) -> None:
        _check(body, {"model", "tokens"}, "DetokenizeRequest")
        h.send_json(200, {"prompt": decode(body["tokens"])})

    def _collective_rpc(self, h: _Handler, body: dict) -> None:
        _check(body, {"method", "args", "kwargs", "timeout"}, "collective_rpc")
        method = body.get("method")
        if method not in VLLM_RPC_METHODS:
            raise BadRequest(f"this fake knows only {sorted(VLLM_RPC_METHODS)}, got {method!r}", status=500)
        if method == "update_config":
            args = body.get("args")
            if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict)):
                raise BadRequest(f"update_config takes one dict of overrides, got {args!r}", status=500)
            _check(args[0], {"model_config", "load_config"}, "update_config overrides")
            self.model_path = args[0].get("model_config", {}).get("model", self.model_path)
        else:
            self.reloads.append(read_safetensors_names(self.model_path))
        h.send_json(200, {"results": [None]})

    def _completions(self, h: _Handler, body: dict) -> None:
        prompt, n, max_tokens = self._validate(body)
        stop = body.get("stop") or []
        seed = body.get("seed")
        gens = [generate(prompt, self.script_for(i if seed is None else seed + i), i if seed is None else seed + i,
                         max_tokens, stop, body.get("stop_token_ids") or [], bool(body.get("ignore_eos")),
                         body.get("min_tokens") or 0) for i in range(n)]
        h.start_sse()
        holdback = max((len(s) for s in stop), default=1) - 1
        sent, given, chunks = [0] * n, [0] * n, 0
        while any(sent[i] < len(g.tokens) for i, g in enumerate(gens)):
            for i, g in enumerate(gens):
                if sent[i] == len(g.tokens):
                    continue
                h.sse(self._chunk(body, prompt, g, i, sent, given, holdback))
                chunks += 1
                if chunks == self.hold_after:
                    if h.wait_gone():
                        self.disconnected.set()
                    return
        if (body.get("stream_options") or {}).get("include_usage"):
            done = sum(len(g.tokens) for g in gens)
            usage = {"prompt_tokens": len(prompt), "completion_tokens": done, "total_tokens": len(prompt) + done}
            if self.cached_tokens:  # as with --enable-prompt-tokens-details
                usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
            h.sse({"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": self.served,
                   "choices": [], "usage": usage})
        h.sse_done()

    def _chunk(self, body: dict, prompt: list[int], g: Generated, i: int, sent: list[int], given: list[int],
               holdback: int) -> dict:
        start, end = sent[i], min(sent[i] + CHUNK_TOKENS, len(g.tokens))
        last = end == len(g.tokens)
        limit = len(g.text) if last else max(given[i], min(len(decode(g.tokens[:end])), len(g.text)) - holdback)
        ids = g.tokens[start:end]
        choice = {"index": i, "text": g.text[given[i]:limit], "logprobs": None,
                  "finish_reason": g.finish if last else None, "stop_reason": g.matched if last and
                  g.matched != EOS else None,
                  "prompt_token_ids": prompt if start == 0 and body.get("return_token_ids") else None,
                  "token_ids": ids if body.get("return_token_ids") else None}
        if body.get("logprobs") is not None:
            choice["logprobs"] = {"text_offset": list(range(start, end)), "token_logprobs":
                                  [logprob(k, g.tokens[k]) for k in range(start, end)],
                                  "tokens": [decode([t], False) for t in ids],
                                  "top_logprobs": [{decode([g.tokens[k]], False): logprob(k, g.tokens[k])}
                                                   for k in range(start, end)]}
        sent[i], given[i] = end, limit
        return {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": self.served,
                "choices": [choice]}

    def _validate(self, body: dict) -> tuple[list[int], int, int]:
        _check(body, VLLM_COMPLETION_FIELDS, "CompletionRequest")
        if body.get("model") not in (None, self.served):
            raise BadRequest(f"The model `{body['model']}` does not exist.", status=404, param="model")
        prompt = body.get("prompt")
        if not _ids(prompt) or not prompt:
            raise BadRequest("this fake takes a non-empty list of token ids as prompt", param="prompt")
        bad = [t for t in prompt if not 0 <= t < VOCAB]
        if bad:
            raise BadRequest(f"Token id {bad[0]} is out of vocabulary", param="prompt")
        for name, ok, why in (
                ("n", lambda v: _is_int(v) and v >= 1, "must be at least 1"),
                ("max_tokens", lambda v: _is_int(v) and v >= 1, "must be at least 1"),
                ("temperature", lambda v: _is_num(v) and v >= 0, "must be non-negative"),
                ("top_p", lambda v: _is_num(v) and 0 < v <= 1, "must be in (0, 1]"),
                ("top_k", lambda v: _is_int(v) and (v >= 0 or v == -1), "must be -1 or 0 (disable) or >= 1"),
                ("min_p", lambda v: _is_num(v) and 0 <= v <= 1, "must be in [0, 1]"),
                ("seed", _is_int, "must be an integer"), ("stop", _strings, "must be a list of strings"),
                ("stop_token_ids", _ids, "must be a list of token ids"),
                ("min_tokens", lambda v: _is_int(v) and 0 <= v <= body.get("max_tokens", 16),
                 "must be in [0, max_tokens]"),
                ("repetition_penalty", lambda v: _is_num(v) and v > 0, "must be greater than zero"),
                ("presence_penalty", lambda v: _is_num(v) and -2 <= v <= 2, "must be in [-2, 2]"),
                ("frequency_penalty", lambda v: _is_num(v) and -2 <= v <= 2, "must be in [-2, 2]"),
                ("logprobs", lambda v: _is_int(v) and (v >= 0 or v == -1), "must be a positive value or -1"),
                ("stream_options", lambda v: isinstance(v, dict) and set(v) <= {"include_usage",
                                                                                 "continuous_usage_stats"},
                 "must be {include_usage, continuous_usage_stats}")):
            _want(body, name, ok, why)
        for name in ("ignore_eos", "skip_special_tokens", "include_stop_str_in_output", "return_token_ids", "stream"):
            _want(body, name, lambda v: isinstance(v, bool), "must be a boolean")
        if not body.get("stream"):
            raise BadRequest("this fake serves stream=true only", param="stream")
        max_tokens = body.get("max_tokens", 16)
        if len(prompt) + max_tokens > self.max_model_len:
            raise BadRequest(f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                             f"requested {len(prompt) + max_tokens} tokens ({len(prompt)} in the messages, "
                             f"{max_tokens} in the completion).", param="max_tokens")
        return prompt, body.get("n", 1), max_tokens


# -------------------------------------------------------------------------------------------- SGLang

SGLANG_GENERATE_FIELDS = {  # sglang/srt/managers/io_struct.py: GenerateReqInput (the text-model part)
    "rid", "session_id", "text", "input_ids", "input_embeds", "sampling_params", "return_logprob",
    "logprob_start_len", "top_logprobs_num", "token_ids_logprob", "return_text_in_logprobs", "stream",
    "log_metrics", "return_hidden_states", "session_params", "lora_path", "custom_logit_processor", "priority",
    "extra_key", "custom_labels", "return_prompt_token_ids", "routed_dp_rank", "data_parallel_rank"}
SGLANG_SAMPLING_FIELDS = {  # sglang/srt/sampling/sampling_params.py: SamplingParams (API parameters)
    "max_new_tokens", "stop", "stop_token_ids", "stop_regex", "temperature", "top_p", "top_k", "min_p",
    "frequency_penalty", "presence_penalty", "repetition_penalty", "min_new_tokens", "n", "json_schema",
    "regex", "ebnf", "structural_tag", "ignore_eos", "skip_special_tokens", "spaces_between_special_tokens",
    "no_stop_trim", "custom_params", "stream_interval", "logit_bias", "sampling_seed"}
SGLANG_DISK_UPDATE_FIELDS = {"model_path", "load_format", "abort_all_requests", "weight_version", "is_async",
                             "torch_empty_cache", "keep_pause", "recapture_cuda_graph", "token_step",
                             "flush_cache"}


class FakeSGLang(FakeServer):
    """`sglang.launch_server` as seen over HTTP: /health, /get_model_info, /get_server_info, /generate,
    /abort_request, /tokenize, /detokenize, /update_weights_from_disk."""

    def __init__(self, *, speculative: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.speculative = speculative
        self.weight_version = "default"
        self.aborted: set[str] = set()

    def guarded(self, path: str) -> bool:
        return not path.startswith("/health")

    def error_body(self, message: str, status: int, param: str | None) -> dict:
        return {"error": {"message": message}}

    def routes(self) -> dict:
        return {("GET", "/health"): lambda h, b: h.send_json(200, None),
                ("GET", "/get_model_info"): self._model_info, ("GET", "/get_server_info"): self._server_info,
                ("POST", "/generate"): self._generate, ("POST", "/abort_request"): self._abort,
                ("POST", "/tokenize"): self._tokenize, ("POST", "/detokenize"): self._detokenize,
                ("POST", "/update_weights_from_disk"): self._update_from_disk}

    def _model_info(self, h: _Handler, body: dict) -> None:
        h.send_json(200, {"model_path": self.root, "tokenizer_path": self.root, "is_generation": True,
                          "preferred_sampling_params": None, "weight_version": self.weight_version})

    def _server_info(self, h: _Handler, body: dict) -> None:
        h.send_json(200, {"model_path": self.root, "served_model_name": self.served, "context_length": None,
                          "dtype": "auto", "speculative_algorithm": "EAGLE" if self.speculative else None,
                          "speculative_num_steps": 1 if self.speculative else None,
                          "speculative_num_draft_tokens": 2 if self.speculative else None,
                          "status": "ready", "max_total_num_tokens": 4096,
                          "max_req_input_len": self.max_model_len - 1, "internal_states": [{}], "version": "fake"})

    def _tokenize(self, h: _Handler, body: dict) -> None:
        _check(body, {"model", "prompt", "add_special_tokens"}, "TokenizeRequest")
        tokens = encode(body["prompt"], body.get("add_special_tokens", True))
        h.send_json(200, {"tokens": tokens, "count": len(tokens), "max_model_len": self.max_model_len})

    def _detokenize(self, h: _Handler, body: dict) -> None:
        _check(body, {"model", "tokens", "skip_special_tokens"}, "DetokenizeRequest")
        h.send_json(200, {"text": decode(body["tokens"], body.get("skip_special_tokens", True))})

    def _abort(self, h: _Handler, body: dict) -> None:
        _check(body, {"rid", "abort_all"}, "AbortReqInput")
        with self._lock:
            self.aborted.add(body.get("rid", ""))
        h.send_json(200, None)

    def _update_from_disk(self, h: _Handler, body: dict) -> None:
        _check(body, SGLANG_DISK_UPDATE_FIELDS, "UpdateWeightFromDiskReqInput")
        try:
            self.reloads.append(read_safetensors_names(body.get("model_path", "")))
        except BadRequest as exc:
            return h.send_json(400, {"success": False, "message": f"Failed to update weights: {exc}",
                                     "num_paused_requests": 0})
        if body.get("weight_version") is not None:
            self.weight_version = body["weight_version"]
        h.send_json(200, {"success": True, "message": "Succeeded to update model weights.",
                          "num_paused_requests": 0})

    def _generate(self, h: _Handler, body: dict) -> None:
        rids, prompts, params = self._validate(body)
        gens = [self._sample(prompt, p, i) for i, (prompt, p) in enumerate(zip(prompts, params))]
        h.start_sse()
        sent, chunks = [0] * len(gens), 0
        while any(sent[i] < len(g.tokens) for i, g in enumerate(gens)):
            for i, g in enumerate(gens):
                if sent[i] == len(g.tokens):
                    continue
                sent[i] = min(sent[i] + CHUNK_TOKENS, len(g.tokens))
                h.sse(self._chunk(body, rids[i], prompts[i], g, i, sent[i]))
                chunks += 1
                if chunks == self.hold_after:
                    return self._hold(h, body, rids, gens, sent)
        h.sse_done()

    def _sample(self, prompt: list[int], p: dict, i: int) -> Generated:
        key = p["sampling_seed"] if p.get("sampling_seed") is not None else i
        stop = p.get("stop") or []
        return generate(prompt, self.script_for(key), key, p.get("max_new_tokens", 128),
                        [stop] if isinstance(stop, str) else stop, p.get("stop_token_ids") or [],
                        bool(p.get("ignore_eos")), p.get("min_new_tokens") or 0)

    def _chunk(self, body: dict, rid: str, prompt: list[int], g: Generated, i: int, upto: int) -> dict:
        last = upto == len(g.tokens)
        meta: dict[str, Any] = {"id": rid, "finish_reason": None, "prompt_tokens": len(prompt),
                                "weight_version": self.weight_version, "total_retractions": 0,
                                "completion_tokens": upto, "cached_tokens": self.cached_tokens}
        if body.get("return_logprob"):
            meta["input_token_logprobs"] = []
            meta["output_token_logprobs"] = [[logprob(k, g.tokens[k]), g.tokens[k], None] for k in range(upto)]
            meta["output_token_logprobs_length"] = upto
        if last:
            meta["finish_reason"] = {"type": g.finish, "length": len(g.tokens)} if g.finish == "length" \
                else {"type": "stop", "matched": g.matched}
            meta["e2e_latency"] = 0.0
            if self.speculative:
                steps = (upto + 1) // 2
                meta.update(spec_verify_ct=steps, spec_accept_token_num=upto - steps, spec_draft_token_num=steps,
                            spec_accept_rate=(upto - steps) / steps, spec_accept_length=upto / steps)
        text = g.text if last else decode(g.tokens[:upto])
        return {"text": text, "output_ids": g.tokens[:upto], "meta_info": meta, "index": i}

    def _hold(self, h: _Handler, body: dict, rids: list[str], gens: list[Generated], sent: list[int]) -> None:
        """Wait for /abort_request of this request's samples (then send SGLang's abort chunks) or for the
        client to go away."""
        def aborted() -> bool:
            with self._lock:
                return any(r in self.aborted for r in rids)

        if h.wait_gone(until=aborted):
            self.disconnected.set()
            return
        for i, g in enumerate(gens):
            if sent[i] < len(g.tokens) and rids[i] in self.aborted:
                meta = {"id": rids[i], "finish_reason": {"type": "abort", "message": "Abort in waiting queue"},
                        "completion_tokens": sent[i]}
                h.sse({"text": decode(g.tokens[:sent[i]]), "output_ids": g.tokens[sent[i] - 1:sent[i]],
                       "meta_info": meta, "index": i})
        h.sse_done()

    def _validate(self, body: dict) -> tuple[list[str], list[list[int]], list[dict]]:
        _check(body, SGLANG_GENERATE_FIELDS, "GenerateReqInput")
        ids = body.get("input_ids")
        batch = ids if isinstance(ids, list) and ids and isinstance(ids[0], list) else [ids]
        if not all(_ids(p) and p for p in batch):
            raise BadRequest("this fake takes input_ids: a token-id list or a list of them")
        params = body.get("sampling_params") or {}
        params = params if isinstance(params, list) else [params] * len(batch)
        rids = body.get("rid")
        rids = [f"{rids}_{i}" for i in range(len(batch))] if isinstance(rids, str) else rids
        rids = rids if rids is not None else [f"fake{i}" for i in range(len(batch))]
        if len(params) != len(batch) or len(rids) != len(batch):
            raise BadRequest("The specified rids length mismatch with the batch_size for batch processing.")
        for prompt, p in zip(batch, params):
            self._verify(prompt, p)
        _want(body, "return_logprob", lambda v: isinstance(v, bool), "must be a boolean")
        if body.get("stream") is not True:
            raise BadRequest("this fake serves stream=true only")
        return rids, batch, params

    def _verify(self, prompt: list[int], p: dict) -> None:
        """SamplingParams(**p) then .verify(): SGLang's unknown-key TypeError and range errors."""
        unknown = sorted(set(p) - SGLANG_SAMPLING_FIELDS)
        if unknown:
            raise BadRequest(f"SamplingParams.__init__() got an unexpected keyword argument '{unknown[0]}'")
        if any(not 0 <= t < VOCAB for t in prompt):
            raise BadRequest(f"The input_ids {prompt} contains values greater than the vocab size ({VOCAB}).")
        for name, ok, why in (
                ("temperature", lambda v: _is_num(v) and v >= 0, "must be a non-negative finite number"),
                ("top_p", lambda v: _is_num(v) and 0 < v <= 1, "must be in (0, 1]"),
                ("min_p", lambda v: _is_num(v) and 0 <= v <= 1, "must be in [0, 1]"),
                ("top_k", lambda v: _is_int(v) and (v >= 1 or v == -1), "must be -1 (disable) or at least 1"),
                ("frequency_penalty", lambda v: _is_num(v) and -2 <= v <= 2, "must be in [-2, 2]"),
                ("presence_penalty", lambda v: _is_num(v) and -2 <= v <= 2, "must be in [-2, 2]"),
                ("repetition_penalty", lambda v: _is_num(v) and 0 < v <= 2, "must be in (0, 2]"),
                ("max_new_tokens", lambda v: _is_int(v) and v >= 0, "must be at least 0"),
                ("min_new_tokens", lambda v: _is_int(v) and 0 <= v <= p.get("max_new_tokens", 128),
                 "must be in [0, max_new_tokens]"),
                ("stop", lambda v: isinstance(v, str) or _strings(v), "must be a string or a list of strings"),
                ("stop_token_ids", _ids, "must be a list of token ids"),
                ("sampling_seed", _is_int, "must be an integer"),
                ("n", lambda v: v == 1, "must be 1 here: the adapter sends n samples as a batch")):
            _want(p, name, ok, why)
        for name in ("ignore_eos", "skip_special_tokens", "no_stop_trim"):
            _want(p, name, lambda v: isinstance(v, bool), "must be a boolean")
        if len(prompt) + p.get("max_new_tokens", 128) > self.max_model_len:
            raise BadRequest(f"Requested token count exceeds the model's maximum context length of "
                             f"{self.max_model_len} tokens.")
