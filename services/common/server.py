"""One bootstrap for every service: `serve()`.

What a service gets by handing a `Service` to `serve()`:
- a `grpc.aio` server on the configured address, with TLS or mutual TLS when configured, and the
  configured message-size limit both ways;
- the standard `grpc.health.v1` service: NOT_SERVING (overall and for the service's name) until the
  service's `start()` has returned, SERVING after, NOT_SERVING again once draining;
- server reflection for the service, health and reflection;
- a Prometheus `/metrics` endpoint on its own port, fed by the metrics interceptor;
- bearer-token auth, a readiness gate and error mapping (see `interceptors.py`);
- graceful drain on SIGTERM/SIGINT: health flips to NOT_SERVING, new calls are refused, in-flight calls
  get `grace_seconds` to finish, then the service's `stop()` runs and the process exits 0.

`ServiceServer` is the same machinery without signal handling, for tests and for embedding.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, start_http_server

import r1
from services.common.config import ServerConfig
from services.common.interceptors import (AuthInterceptor, ErrorInterceptor, MetricsInterceptor,
                                          ReadinessInterceptor)
from services.common.metrics import RpcMetrics, ServiceMetrics

log = logging.getLogger(__name__)


@dataclass
class Service:
    """What a service hands to the bootstrap.

    name: the full proto service name (``r1.verifier.v1.Verifier``): reflection and health use it.
    register: adds the servicer(s) to the server.
    start: loads what the service needs (models, pools); health turns SERVING when it returns.
        It runs after the port is bound, so probes see NOT_SERVING during a long load.
    stop: releases resources once in-flight calls have drained.
    """

    name: str
    register: Callable[[grpc.aio.Server], None]
    start: Callable[[], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    tls = config.tls
    if not tls.enabled:
        return None
    client_ca = _read(tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(tls.key_file), _read(tls.cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


class ServiceServer:
    """A running service: gRPC server, health, reflection, metrics endpoint. See the module docstring."""

    def __init__(self, service: Service, config: ServerConfig):
        config.check()
        self.service = service
        self.config = config
        self.port = 0
        self.metrics_port: int | None = None
        self._ready = asyncio.Event()
        self._startup: asyncio.Task | None = None
        self._startup_error: BaseException | None = None
        self._health = health.aio.HealthServicer()
        self._metrics_http = None
        self._server: grpc.aio.Server | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> None:
        """Bind and start serving (NOT_SERVING), then run the service's own start in the background."""
        registry = self.service.registry
        self._service_metrics = ServiceMetrics(registry, self.service.name, r1.__version__)
        interceptors = [MetricsInterceptor(RpcMetrics(registry))]
        token = self.config.token()
        if token:
            interceptors.append(AuthInterceptor(token))
        interceptors += [ReadinessInterceptor(lambda: self.ready), ErrorInterceptor()]
        limit = self.config.max_message_bytes
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
                     ("grpc.so_reuseport", 0)],
        )
        self.service.register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in ("", self.service.name):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            (self.service.name, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        address = f"{self.config.host}:{self.config.port}"
        credentials = server_credentials(self.config)
        self.port = (server.add_secure_port(address, credentials) if credentials
                     else server.add_insecure_port(address))
        await server.start()
        self._server = server
        if self.config.metrics_port >= 0:
            self._metrics_http, _ = start_http_server(
                self.config.metrics_port, addr=self.config.metrics_host, registry=registry)
            self.metrics_port = self._metrics_http.server_port
        log.info("%s listening on %s:%d (tls=%s, mtls=%s, auth=%s), metrics on %s",
                 self.service.name, self.config.host, self.port, self.config.tls.enabled,
                 bool(self.config.tls.client_ca_file), bool(token),
                 f"{self.config.metrics_host}:{self.metrics_port}" if self.metrics_port is not None else "off")
        self._startup = asyncio.create_task(self._run_service_start())

    async def _run_service_start(self) -> None:
        try:
            if self.service.start is not None:
                await self.service.start()
        except BaseException as e:  # reported by wait_ready(); health stays NOT_SERVING
            self._startup_error = e
            log.exception("%s failed to start", self.service.name)
            return
        for name in ("", self.service.name):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._service_metrics.ready.set(1)
        self._ready.set()
        log.info("%s is ready", self.service.name)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the service's start has returned; re-raise its error if it failed."""
        assert self._startup is not None, "start() first"
        await asyncio.wait_for(asyncio.shield(self._startup), timeout)
        if self._startup_error is not None:
            raise self._startup_error

    async def drain(self, grace: float | None = None) -> None:
        """Stop: NOT_SERVING, refuse new calls, let in-flight ones finish within `grace`, release."""
        grace = self.config.grace_seconds if grace is None else grace
        log.info("%s draining (grace %.1fs)", self.service.name, grace)
        self._service_metrics.ready.set(0)
        await self._health.enter_graceful_shutdown()
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        if self.service.stop is not None:
            await self.service.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        log.info("%s stopped", self.service.name)

    async def wait_for_termination(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.wait_for_termination()


async def serve(service: Service, config: ServerConfig, *, port_file: str | None = None) -> int:
    """Run `service` until SIGTERM/SIGINT, then drain. Returns the process exit code.

    port_file: if given, ``{"port": ..., "metrics_port": ...}`` is written there once bound (useful with
    port 0, for launchers and tests).
    """
    server = ServiceServer(service, config)
    await server.start()
    if port_file:
        Path(port_file).write_text(json.dumps({"port": server.port, "metrics_port": server.metrics_port}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({stopping, server._startup}, return_when=asyncio.FIRST_COMPLETED)
    failed = server._startup_error is not None  # a service that cannot start exits 1, never serving
    if not failed:
        await stopping
    await server.drain()
    return 1 if failed else 0
