"""How the service clients retry and report: one policy for every `client.py`.

A call refused because the service's queue is full (RESOURCE_EXHAUSTED) is retried with exponential backoff
(50 ms doubling to 2 s) and jitter for up to `retry_seconds`; any other failure raises at once the library
error its status code maps to (`errors.error_from_status`), so a client's caller sees the error the
service's library raised. An unreachable service is reported with its name and address.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc

from r1.errors import R1Error, Unavailable
from services.common.errors import error_from_status

T = TypeVar("T")


def backoff(retry_seconds: float) -> Iterator[float | None]:
    """Seconds to wait after each refused attempt; None marks the last attempt."""
    give_up = time.monotonic() + retry_seconds
    wait = 0.05
    while time.monotonic() < give_up:
        yield min(wait, max(0.0, give_up - time.monotonic())) * random.uniform(0.5, 1.0)
        wait = min(wait * 2, 2.0)
    yield None


def client_error(e: grpc.RpcError, service: str, target: str) -> R1Error:
    error = error_from_status(e.code(), e.details())
    if isinstance(error, Unavailable):
        return Unavailable(f"{service} at {target}: {e.code().name}: {e.details()}")
    return error


def call_with_retry(rpc: Callable[[], T], retry_seconds: float, service: str, target: str) -> T:
    """rpc() until it is not refused for a full queue (see the module docstring)."""
    for wait in backoff(retry_seconds):
        try:
            return rpc()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or wait is None:
                raise client_error(e, service, target) from None
        time.sleep(wait)
    raise AssertionError("backoff() ends with None")
