"""The generation service's own Prometheus metrics, next to the per-RPC ones every service has.

r1_generation_tokens_total{kind="prompt"|"completion"}   tokens prefilled (once per request) / generated
r1_generation_requests_running                           samples decoding now (backend.stats(), at scrape)
r1_generation_requests_waiting                           samples queued for a cache slot (backend.stats())
r1_generation_kv_cache_bytes                             KV / latent cache bytes held by running samples
r1_generation_time_to_first_token_seconds                request arrival -> its first token
r1_generation_inter_token_latency_seconds                seconds per generated token after the first
r1_spec_decode_draft_tokens_total                        draft tokens proposed by speculative decoding
r1_spec_decode_accepted_tokens_total                     of those, accepted by the target model
r1_spec_decode_accepted_tokens_by_position_total{position="1".."k"}  accepted drafts at position j
                                                         (acceptance of position j = that / drafts per position)
r1_generation_weight_version                             the weight version served (ModelInfo.weight_version)
r1_generation_weight_update_seconds                      UpdateWeights / LoadCheckpoint: first chunk (or call)
                                                         -> swap done, as the trainer sees the sync

`GenerationMetrics` is the engine's `EngineObserver` (r1/engine/observer.py): the torch engine reports
tokens, latencies and speculation from its thread. Backends that take no observer (the vLLM and SGLang
adapters) are counted from the outputs the servicer streams (`count_outputs`): tokens and per-sample draft
counts, no latencies, no per-position acceptance (their own /metrics have those). The weight version is
read from the backend at scrape time, so LoadCheckpoint and UpdateWeights both show, whatever the backend.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from r1.engine.types import Backend, SampleOutput
from services.common.metrics import LATENCY_BUCKETS

# Seconds per token: sub-millisecond on a GPU batch, up to seconds for a CPU teacher under load.
TOKEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class GenerationMetrics:
    """See the module docstring. `count_outputs`: count tokens from streamed outputs (no engine observer)."""

    def __init__(self, registry: CollectorRegistry, count_outputs: bool = False):
        self.count_outputs = count_outputs
        self.tokens = Counter("r1_generation_tokens", "Tokens processed, by kind (prompt: prefilled once per "
                                                      "request; completion: generated).", ["kind"], registry=registry)
        self.running = Gauge("r1_generation_requests_running", "Samples being decoded.", registry=registry)
        self.waiting = Gauge("r1_generation_requests_waiting", "Samples waiting for a cache slot.", registry=registry)
        self.kv_cache = Gauge("r1_generation_kv_cache_bytes", "KV / latent cache bytes held by running samples.",
                              registry=registry)
        self.ttft = Histogram("r1_generation_time_to_first_token_seconds", "Request arrival to its first token.",
                              buckets=LATENCY_BUCKETS, registry=registry)
        self.itl = Histogram("r1_generation_inter_token_latency_seconds", "Seconds per token after the first.",
                             buckets=TOKEN_BUCKETS, registry=registry)
        self.drafted = Counter("r1_spec_decode_draft_tokens", "Draft tokens proposed by speculative decoding.",
                               registry=registry)
        self.accepted = Counter("r1_spec_decode_accepted_tokens", "Draft tokens accepted by the target model.",
                                registry=registry)
        self.accepted_by_position = Counter(
            "r1_spec_decode_accepted_tokens_by_position", "Accepted draft tokens by draft position (1 = the "
                                                          "token after next).", ["position"], registry=registry)
        self.weight_version = Gauge("r1_generation_weight_version", "Version of the weights being served.",
                                    registry=registry)
        self.update_seconds = Histogram("r1_generation_weight_update_seconds", "Weight update (first chunk, or "
                                        "LoadCheckpoint call) to the swap completing.", buckets=LATENCY_BUCKETS,
                                        registry=registry)
        for kind in ("prompt", "completion"):
            self.tokens.labels(kind)

    def watch(self, backend: Backend) -> None:
        """Read queue depth, cache bytes (when the backend has `stats()`) and the weight version at scrape."""
        stats = getattr(backend, "stats", None)
        if callable(stats):
            self.running.set_function(lambda: stats()["running"])
            self.waiting.set_function(lambda: stats()["waiting"])
            self.kv_cache.set_function(lambda: stats()["cache_bytes"])
        self.weight_version.set_function(lambda: backend.info.weight_version)
        for position in range(1, backend.info.spec_tokens + 1):
            self.accepted_by_position.labels(str(position))

    def output(self, output: SampleOutput) -> None:
        """A sample the servicer streamed back; counted only for backends without an observer."""
        if not self.count_outputs:
            return
        if output.index == 0:
            self.tokens.labels("prompt").inc(output.prompt_tokens)
        self.tokens.labels("completion").inc(len(output.token_ids))
        self.drafted.inc(output.spec_draft_tokens)
        self.accepted.inc(output.spec_accepted_tokens)

    # ------------------------------------------------------------------------------------ EngineObserver

    def prompt_tokens(self, count: int) -> None:
        self.tokens.labels("prompt").inc(count)

    def completion_tokens(self, count: int) -> None:
        self.tokens.labels("completion").inc(count)

    def time_to_first_token(self, seconds: float) -> None:
        self.ttft.observe(seconds)

    def inter_token_latency(self, seconds: float) -> None:
        self.itl.observe(seconds)

    def speculation(self, drafted: int, accepted_per_position: list[int]) -> None:
        self.drafted.inc(drafted)
        self.accepted.inc(sum(accepted_per_position))
        for position, count in enumerate(accepted_per_position, start=1):
            self.accepted_by_position.labels(str(position)).inc(count)

    def weights_updated(self, version: int, seconds: float) -> None:
        """The engine's swap itself (copying staged tensors between two steps): the version gauge reads the
        backend directly and the histogram times the whole update in the servicer, so nothing to add here."""
