"""Test harness: an in-process `ServiceServer` on its own event-loop thread, driven by sync clients.

Tests, benchmarks and the notebooks of later issues use it to talk to a real server on 127.0.0.1 port 0
without a subprocess. The server thread owns the asyncio loop; callers use plain blocking gRPC stubs.
"""

from __future__ import annotations

import asyncio
import threading

from services.common.config import ServerConfig
from services.common.server import Service, ServiceServer


class ServerThread:
    """``with ServerThread(service, config) as server: ...`` -> `server.port`, `server.metrics_port`."""

    def __init__(self, service: Service, config: ServerConfig | None = None):
        self.config = config or ServerConfig(host="127.0.0.1", port=0, metrics_host="127.0.0.1",
                                             metrics_port=0, grace_seconds=5)
        self.server = ServiceServer(service, self.config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="r1-server", daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def metrics_port(self) -> int | None:
        return self.server.metrics_port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, coro, timeout: float | None = 60):
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.run(self.server.start())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.run(self.server.drain(grace=0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
