"""Run services as local processes: start, wait for health SERVING, stop with SIGTERM.

The non-Kubernetes path: the demo, the end-to-end tests and `r1 up` use it. Each service is
`python -m r1.cli serve NAME` in its own process group, on 127.0.0.1 by default, with ports picked by the OS
(or the ones asked for) and reported back through a port file, so several stacks can run side by side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def health_status(target: str, service: str = "", timeout: float = 2.0,
                  credentials: grpc.ChannelCredentials | None = None) -> str:
    """The health status name (SERVING, NOT_SERVING, ...) of `service` at `target`, or the RPC's code."""
    channel = (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target))
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as e:
            return e.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@dataclass
class LocalService:
    """One service running as a child process."""

    name: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    requested_port: int = 0  # 0: any free port
    requested_metrics_port: int = 0
    process: subprocess.Popen | None = None
    port: int = 0
    metrics_port: int | None = None
    log_path: Path | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, workdir: Path, timeout: float = 60.0) -> None:
        """Start the process and wait until it has bound its ports (not until it is ready)."""
        port_file = workdir / f"{self.name}.ports.json"
        port_file.unlink(missing_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        cmd = [sys.executable, "-m", "r1.cli", "serve", self.name, "--host", self.host,
               "--port", str(self.requested_port), "--metrics-host", self.host,
               "--metrics-port", str(self.requested_metrics_port), "--port-file", str(port_file), *self.args]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} before binding; "
                                   f"log:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"{self.name} did not bind within {timeout:.0f}s; log:\n{self.log()}")
            time.sleep(0.05)
        ports = json.loads(port_file.read_text())
        self.port, self.metrics_port = ports["port"], ports["metrics_port"]

    def wait_serving(self, timeout: float = 120.0,
                     credentials: grpc.ChannelCredentials | None = None) -> None:
        deadline = time.monotonic() + timeout
        status = ""
        while (status := health_status(self.target, credentials=credentials)) != "SERVING":
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not SERVING after {timeout:.0f}s (last: {status})")
            time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait for the drain, return the exit code (SIGKILL if it overstays `timeout`)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path and self.log_path.exists() else ""


class LocalStack:
    """Several `LocalService`s started together and stopped together (a context manager)."""

    def __init__(self, names: list[str], workdir: Path | None = None, args: dict[str, list[str]] | None = None,
                 ready_seconds: float = 120.0, **kwargs):
        """args: extra `r1 serve` arguments per service name (e.g. the generation service's model);
        ready_seconds: how long each service may take to answer SERVING."""
        self.ready_seconds = ready_seconds
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="r1-stack-")
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = args or {}
        self.services = {name: LocalService(name, args=[*kwargs.pop("args", []), *args.get(name, [])], **kwargs)
                         for name in names}

    def __enter__(self) -> LocalStack:
        try:
            for service in self.services.values():
                service.start(self.workdir)
            for service in self.services.values():
                service.wait_serving(self.ready_seconds)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> dict[str, int]:
        codes = {name: service.stop() for name, service in self.services.items()}
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return codes
