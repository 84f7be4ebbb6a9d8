"""A `Service` made of a generated base servicer alone, for services whose RPCs are not built yet.

The generated base class answers every RPC with UNIMPLEMENTED ("Method not implemented!"), which is the
honest answer; health, reflection, metrics, auth and drain work as for any other service, so clients and
deployments can be written against the contract before the implementation lands.
"""

from __future__ import annotations

from types import ModuleType

from services.common.server import Service


def unimplemented_service(pb2: ModuleType, pb2_grpc: ModuleType, name: str) -> Service:
    """`Service` for proto service `name` (short name, e.g. "Trainer") using its generated base servicer."""
    full_name = pb2.DESCRIPTOR.services_by_name[name].full_name
    servicer = getattr(pb2_grpc, f"{name}Servicer")()
    add = getattr(pb2_grpc, f"add_{name}Servicer_to_server")
    return Service(name=full_name, register=lambda server: add(servicer, server))
