"""A real verifier service on 127.0.0.1 (in-process server thread), ready before the tests use it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from r1.rewards.sandbox import Sandbox, SandboxUnavailable
from r1.rewards.verifier import VerifierConfig
from services.common.harness import ServerThread
from services.verifier.app import Config, build
from services.verifier.client import VerifierClient


@contextlib.contextmanager
def running_verifier(max_batch_items: int = 4096, **verifier) -> Iterator[ServerThread]:
    try:
        Sandbox()
    except SandboxUnavailable as e:
        pytest.skip(f"the full sandbox is not available here, and the service fails closed: {e}")
    settings = dict(workers=2, math_workers=2, deadline_seconds=30.0) | verifier
    with ServerThread(build(Config(verifier=VerifierConfig(**settings), max_batch_items=max_batch_items))) as server:
        server.run(server.server.wait_ready(120), timeout=130)
        yield server


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with running_verifier() as server:
        yield server


@pytest.fixture
def client(server: ServerThread) -> Iterator[VerifierClient]:
    with VerifierClient(server.target, timeout=120) as client:
        yield client
