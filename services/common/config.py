"""The server section every service config has (`server:` in YAML, `R1_SERVER__*` in the environment).

One dataclass, documented once, so that all four services are started, secured and probed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from r1.errors import InvalidArgument


@dataclass(frozen=True)
class TlsConfig:
    """TLS for the gRPC port. Off while `cert_file` is empty.

    cert_file: PEM certificate chain the server presents.
    key_file: PEM private key of that certificate.
    client_ca_file: PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS).
    """

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


@dataclass(frozen=True)
class ServerConfig:
    """How a service listens.

    host / port: the gRPC address (port 0 picks a free port; the bound one is logged and reported).
    metrics_host / metrics_port: the Prometheus `/metrics` HTTP endpoint (port 0 picks a free port,
        -1 turns it off). Plain HTTP, meant for in-cluster scraping.
    max_message_bytes: largest message accepted or sent, both directions (weight chunks, big batches).
    grace_seconds: on SIGTERM, how long in-flight calls may run on while new calls are refused.
    auth_token: a bearer token every call must carry (`authorization: Bearer <token>` metadata); empty
        turns auth off. The health service stays open so that probes need no secret.
    auth_token_file: read the token from this file instead (a mounted Kubernetes secret).
    tls: see `TlsConfig`.
    """

    host: str = "0.0.0.0"
    port: int = 50051
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9090
    max_message_bytes: int = 256 * 1024 * 1024
    grace_seconds: float = 30.0
    auth_token: str = ""
    auth_token_file: str = ""
    tls: TlsConfig = field(default_factory=TlsConfig)

    def token(self) -> str:
        """The bearer token in force ("" when auth is off); the file wins over the inline value."""
        if self.auth_token_file:
            path = Path(self.auth_token_file)
            if not path.is_file():
                raise InvalidArgument("server.auth_token_file", f"file not found: {path}")
            token = path.read_text().strip()
            if not token:
                raise InvalidArgument("server.auth_token_file", f"{path} is empty")
            return token
        return self.auth_token

    def check(self) -> None:
        """Reject settings that cannot work, naming the field."""
        if not 0 <= self.port <= 65535:
            raise InvalidArgument("server.port", f"must be in 0..65535, got {self.port}")
        if not -1 <= self.metrics_port <= 65535:
            raise InvalidArgument("server.metrics_port", f"must be in -1..65535 (-1 = off), got {self.metrics_port}")
        if self.max_message_bytes <= 0:
            raise InvalidArgument("server.max_message_bytes", "must be positive")
        if self.grace_seconds < 0:
            raise InvalidArgument("server.grace_seconds", "must be >= 0")
        if self.tls.enabled != bool(self.tls.key_file):
            raise InvalidArgument("server.tls", "cert_file and key_file must be set together")
        if self.tls.client_ca_file and not self.tls.enabled:
            raise InvalidArgument("server.tls.client_ca_file", "mutual TLS needs cert_file and key_file too")
        for name in ("cert_file", "key_file", "client_ca_file"):
            value = getattr(self.tls, name)
            if value and not Path(value).is_file():
                raise InvalidArgument(f"server.tls.{name}", f"file not found: {value}")


@dataclass(frozen=True)
class ServiceConfig:
    """A service's whole config file. Services add their own section next to `server` as they grow."""

    server: ServerConfig = field(default_factory=ServerConfig)
