"""Builds the verifier service for the bootstrap: config, the library `Verifier`, metrics, servicer.

The `Verifier` (sandbox probe, symbolic worker processes) is built in the service's `start`, off the event
loop, so health says NOT_SERVING until it is ready, and a host without the required isolation fails the
start (the process exits 1) instead of serving unsandboxed code: fail closed, unless
`verifier.sandbox.allow_degraded` says otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from r1.errors import InvalidArgument
from r1.rewards.sandbox import Sandbox
from r1.rewards.verifier import Verifier, VerifierConfig
from services.common.config import ServerConfig
from services.common.server import Service
from services.protogen.verifier.v1 import verifier_pb2, verifier_pb2_grpc
from services.verifier.metrics import VerifierMetrics
from services.verifier.servicer import VerifierServicer

__all__ = ["Config", "build"]


@dataclass(frozen=True)
class Config:
    """server: see `ServerConfig`; verifier: workers, queue bound, default deadline, sandbox (see
    `VerifierConfig`); max_batch_items: most items one VerifyBatch call may carry (at most
    verifier.max_pending, since a bigger batch could never be admitted)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    max_batch_items: int = 4096

    def check(self) -> None:
        if not 0 < self.max_batch_items <= self.verifier.max_pending:
            raise InvalidArgument("max_batch_items", f"must be in [1, verifier.max_pending = "
                                                     f"{self.verifier.max_pending}], got {self.max_batch_items}")


def build(config: Config) -> Service:
    config.check()
    registry = CollectorRegistry()
    metrics = VerifierMetrics(registry)
    servicer = VerifierServicer(metrics, config.max_batch_items)

    def make_verifier() -> Verifier:
        sandbox = Sandbox(config.verifier.sandbox, observer=metrics.sandbox_run)
        return Verifier(config.verifier, sandbox=sandbox)

    async def start() -> None:
        verifier = await asyncio.to_thread(make_verifier)
        metrics.watch(lambda: verifier.pending, verifier.layers)
        servicer.verifier = verifier

    async def stop() -> None:
        if servicer.verifier is not None:
            await asyncio.to_thread(servicer.verifier.close)

    return Service(
        name=verifier_pb2.DESCRIPTOR.services_by_name["Verifier"].full_name,
        register=lambda server: verifier_pb2_grpc.add_VerifierServicer_to_server(servicer, server),
        start=start, stop=stop, registry=registry)
