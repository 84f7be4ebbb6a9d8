"""Builds the generation service for the bootstrap: config, the backend, metrics, servicer.

The backend is chosen by name from `BACKENDS`, one explicit dict: "torch" (our `TorchEngine`, in this
process), "vllm" or "sglang" (adapters over an engine server running beside us, imported only when chosen,
so a torch deployment never imports their HTTP client code). An unknown name fails with the valid ones.

The backend is built and started (the model loaded, or the engine server reached) in the service's
`start`, so health says NOT_SERVING until the model is ready and the readiness gate answers UNAVAILABLE
meanwhile; `stop` closes it after in-flight calls drained. Metrics live on the service's own registry; the
torch engine reports into them as its `EngineObserver`, the adapters are counted from their outputs.

Deliberately not here: switching to a different architecture on LoadCheckpoint (the torch engine refuses it
with FAILED_PRECONDITION; start a new server to serve another model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from r1.engine.http_backend import EngineServerConfig
from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
from r1.engine.types import Backend
from r1.errors import FailedPrecondition, InvalidArgument
from services.common.config import ServerConfig
from services.common.server import Service
from services.generation.metrics import GenerationMetrics
from services.generation.servicer import GenerationServicer
from services.protogen.generation.v1 import generation_pb2, generation_pb2_grpc

__all__ = ["BACKENDS", "Config", "EngineSection", "build"]


@dataclass(frozen=True)
class EngineSection:
    """backend: which engine serves the model, one of `BACKENDS` ("torch", "vllm", "sglang");
    torch: the in-process engine (model directory or hub id, dtype, device, slots, MTP spec_tokens, ...);
    vllm / sglang: how to reach that engine's server (base_url, api_key, tokenizer, weight_dir, ...).
    Only the chosen backend's section is read."""

    backend: str = "torch"
    torch: TorchEngineConfig = field(default_factory=TorchEngineConfig)
    vllm: EngineServerConfig = field(default_factory=EngineServerConfig)
    sglang: EngineServerConfig = field(default_factory=EngineServerConfig)


@dataclass(frozen=True)
class Config:
    """server: see `ServerConfig`; engine: see `EngineSection`; max_update_bytes: most tensor bytes one
    UpdateWeights stream may carry, 0 for no limit (each gRPC message is also bounded by
    server.max_message_bytes, so big tensors come sliced)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    engine: EngineSection = field(default_factory=EngineSection)
    max_update_bytes: int = 0

    def check(self) -> None:
        if self.engine.backend not in BACKENDS:
            raise InvalidArgument("engine.backend", f"unknown backend {self.engine.backend!r}; valid: "
                                                    f"{', '.join(BACKENDS)}")
        if self.max_update_bytes < 0:
            raise InvalidArgument("max_update_bytes", f"must be >= 0 (0: no limit), got {self.max_update_bytes}")
        if self.engine.backend == "torch":
            self.engine.torch.check("engine.torch")


def _torch(engine: EngineSection, metrics: GenerationMetrics) -> Backend:
    return TorchEngine(engine.torch, observer=metrics, section="engine.torch")


def _vllm(engine: EngineSection, metrics: GenerationMetrics) -> Backend:
    metrics.count_outputs = True
    return _adapter("r1.engine.vllm", "VLLMBackend")(engine.vllm, section="engine.vllm")


def _sglang(engine: EngineSection, metrics: GenerationMetrics) -> Backend:
    metrics.count_outputs = True
    return _adapter("r1.engine.sglang", "SGLangBackend")(engine.sglang, section="engine.sglang")


def _adapter(module: str, name: str) -> Callable[..., Backend]:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise FailedPrecondition(f"backend {module}.{name} is not available in this build ({e}); use "
                                 "engine.backend = torch") from e


BACKENDS: dict[str, Callable[[EngineSection, GenerationMetrics], Backend]] = {
    "torch": _torch,
    "vllm": _vllm,
    "sglang": _sglang,
}


def build(config: Config) -> Service:
    config.check()
    registry = CollectorRegistry()
    metrics = GenerationMetrics(registry)
    servicer = GenerationServicer(metrics, config.max_update_bytes)

    async def start() -> None:
        backend = BACKENDS[config.engine.backend](config.engine, metrics)
        await backend.start()
        metrics.watch(backend)
        servicer.backend = backend

    async def stop() -> None:
        if servicer.backend is not None:
            await servicer.backend.close()

    return Service(
        name=generation_pb2.DESCRIPTOR.services_by_name["Generation"].full_name,
        register=lambda server: generation_pb2_grpc.add_GenerationServicer_to_server(servicer, server),
        start=start, stop=stop, registry=registry)
