"""Prometheus metrics shared by every service: per-RPC counters, latency, in-flight calls, readiness.

Each server owns its `CollectorRegistry` (no process-global registry), so several servers can live in
one process (tests do this) and a service adds its own metrics to the registry it is handed.
Names carry the `r1_` prefix; label values are the proto service and method names.
"""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Seconds; from sub-millisecond cache hits to multi-minute rollout streams.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                   120, 300, 600)


class RpcMetrics:
    """The metrics the bootstrap keeps for every RPC of every service."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "r1_grpc_requests", "gRPC calls handled, by final status code.",
            ["service", "method", "code"], registry=registry)
        self.latency = Histogram(
            "r1_grpc_request_duration_seconds", "Wall time from call start to its last message.",
            ["service", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge(
            "r1_grpc_requests_in_flight", "gRPC calls currently being handled.",
            ["service", "method"], registry=registry)

    def observe(self, service: str, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.requests.labels(service, method, code.name).inc()
        self.latency.labels(service, method).observe(seconds)


class ServiceMetrics:
    """Whether the service is ready, and what build it runs."""

    def __init__(self, registry: CollectorRegistry, service: str, version: str):
        self.ready = Gauge("r1_service_ready", "1 once the service is loaded and serving, else 0.",
                           ["service"], registry=registry).labels(service)
        Info("r1_build", "r1-stack build.", registry=registry).info({"version": version, "service": service})
