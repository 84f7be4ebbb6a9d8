"""The verifier's own Prometheus metrics, next to the per-RPC ones every service has.

r1_verifier_items_total{kind,verdict}        items answered (Grafana's pass rate: CORRECT over all)
r1_verifier_item_duration_seconds{kind}      seconds from a worker taking the item up to its verdict
r1_verifier_queue_depth                      items admitted and not yet checked (queued or running)
r1_verifier_rejected_items_total             items refused with RESOURCE_EXHAUSTED (queue full)
r1_verifier_sandbox_runs_total{status}       sandboxed program runs by outcome (OK, TIMEOUT, ...)
r1_verifier_isolation_layer{layer}           1 for each isolation layer active in the code sandbox
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from r1.rewards.sandbox import RunResult
from r1.rewards.verifier import Verified
from services.common.metrics import LATENCY_BUCKETS


class VerifierMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.items = Counter("r1_verifier_items", "Items answered, by kind and verdict.", ["kind", "verdict"],
                             registry=registry)
        self.duration = Histogram("r1_verifier_item_duration_seconds",
                                  "Seconds from a worker taking an item up to its verdict.", ["kind"],
                                  buckets=LATENCY_BUCKETS, registry=registry)
        self.queue_depth = Gauge("r1_verifier_queue_depth", "Items admitted and not yet checked.",
                                 registry=registry)
        self.rejected = Counter("r1_verifier_rejected_items", "Items refused because the queue was full.",
                                registry=registry)
        self.sandbox_runs = Counter("r1_verifier_sandbox_runs", "Sandboxed program runs, by outcome.",
                                    ["status"], registry=registry)
        self.isolation = Gauge("r1_verifier_isolation_layer", "1 for each isolation layer active in the sandbox.",
                               ["layer"], registry=registry)

    def watch(self, pending: Callable[[], int], layers: tuple[str, ...]) -> None:
        """Read the queue depth from `pending` at scrape time; publish the active layers."""
        self.queue_depth.set_function(pending)
        for layer in layers:
            self.isolation.labels(layer).set(1)

    def observe(self, verified: Verified) -> None:
        self.items.labels(verified.kind, verified.result.verdict.value).inc()
        self.duration.labels(verified.kind).observe(verified.elapsed)

    def sandbox_run(self, result: RunResult) -> None:
        self.sandbox_runs.labels(result.status.value).inc()
