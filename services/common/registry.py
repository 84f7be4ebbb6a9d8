"""The four services by name: where each one's `build()` lives and its default ports.

An explicit table, not a plugin mechanism: `r1 serve NAME` and the local launcher look names up here,
and an unknown name fails with the list of valid ones. A service module is imported only when that
service is started, so starting the verifier never imports torch models.

Every service module exposes `Config` (a frozen dataclass with at least a `server: ServerConfig`
section) and `build(config) -> Service`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from r1.errors import InvalidArgument


@dataclass(frozen=True)
class ServiceEntry:
    module: str
    port: int
    metrics_port: int


SERVICES: dict[str, ServiceEntry] = {
    "generation": ServiceEntry("services.generation.app", 50051, 9101),
    "verifier": ServiceEntry("services.verifier.app", 50052, 9102),
    "trainer": ServiceEntry("services.trainer.app", 50053, 9103),
    "exporter": ServiceEntry("services.exporter.app", 50054, 9104),
}


def entry(name: str) -> ServiceEntry:
    if name not in SERVICES:
        raise InvalidArgument("service", f"unknown service {name!r}; valid: {', '.join(SERVICES)}")
    return SERVICES[name]


def service_module(name: str) -> ModuleType:
    return importlib.import_module(entry(name).module)
