"""Builds the generation service for the bootstrap.

Its RPCs are not implemented yet: they answer UNIMPLEMENTED until the generation issue lands. Health,
reflection, metrics, auth and drain already work, so clients can be written against the contract.
"""

from __future__ import annotations

from services.common.config import ServiceConfig as Config
from services.common.generated import unimplemented_service
from services.common.server import Service
from services.protogen.generation.v1 import generation_pb2, generation_pb2_grpc

__all__ = ["Config", "build"]


def build(config: Config) -> Service:
    return unimplemented_service(generation_pb2, generation_pb2_grpc, "Generation")
