"""Server interceptors: metrics, bearer-token auth, readiness gate, error mapping.

They are installed outermost first, in that order, so that:
- every call is counted and timed, including the ones auth refuses (`MetricsInterceptor`);
- a call without the right token never reaches the service (`AuthInterceptor`); the health service is
  exempt so that Kubernetes probes need no secret;
- a call that arrives while the service is still loading gets UNAVAILABLE, not a half-built servicer
  (`ReadinessInterceptor`); health and reflection are exempt;
- a library error raised by a servicer becomes its status code and message (`ErrorInterceptor`, table in
  `errors.py`); so does a request whose bytes do not parse (e.g. a string field with invalid UTF-8), which
  gRPC would otherwise answer UNKNOWN: it becomes INVALID_ARGUMENT saying what did not parse.

Each interceptor wraps the method handler's behaviour; `WrappingInterceptor` does the plumbing for the four
call shapes once. Streaming-response behaviours must be async generators (our servicers are); unary ones
may be coroutines or plain functions.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc.aio import AbortError

from r1.errors import InvalidArgument
from services.common.errors import status_for
from services.common.metrics import RpcMetrics

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")

Behavior = Callable[..., Any]


def split_method(full_method: str) -> tuple[str, str]:
    """``"/r1.verifier.v1.Verifier/Verify"`` -> ``("r1.verifier.v1.Verifier", "Verify")``."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


async def _resolve(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Base: wraps each handler's behaviour with `around_single` / `around_stream`."""

    def applies_to(self, method: str) -> bool:
        return True

    async def around_single(self, behavior: Behavior, request: Any, context: grpc.aio.ServicerContext,
                            method: str) -> Any:
        return await _resolve(behavior(request, context))

    async def around_stream(self, behavior: Behavior, request: Any, context: grpc.aio.ServicerContext,
                            method: str) -> AsyncIterator[Any]:
        async for item in behavior(request, context):
            yield item

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.applies_to(method):
            return handler
        return self._wrap(handler, method)

    def deserializer(self, handler: grpc.RpcMethodHandler) -> Callable[[bytes], Any] | None:
        return handler.request_deserializer

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        codec = dict(request_deserializer=self.deserializer(handler),
                     response_serializer=handler.response_serializer)
        if handler.response_streaming:
            inner = handler.stream_stream if handler.request_streaming else handler.unary_stream

            async def stream(request, context):  # must itself be an async generator function: grpc.aio
                async for item in self.around_stream(inner, request, context, method):  # checks the type
                    yield item

            make = grpc.stream_stream_rpc_method_handler if handler.request_streaming \
                else grpc.unary_stream_rpc_method_handler
            return make(stream, **codec)
        inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

        async def single(request, context):
            return await self.around_single(inner, request, context, method)

        make = grpc.stream_unary_rpc_method_handler if handler.request_streaming \
            else grpc.unary_unary_rpc_method_handler
        return make(single, **codec)


def _code_after(error: BaseException | None, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a call ended with, as far as the server can tell."""
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is not None and not isinstance(error, AbortError):
        return status_for(error)[0]
    return grpc.StatusCode.OK


class MetricsInterceptor(WrappingInterceptor):
    """Counts calls by method and final code, times them, and tracks calls in flight."""

    def __init__(self, metrics: RpcMetrics):
        self.metrics = metrics

    async def around_single(self, behavior, request, context, method):
        service, name = split_method(method)
        in_flight = self.metrics.in_flight.labels(service, name)
        start, error = time.perf_counter(), None
        in_flight.inc()
        try:
            return await _resolve(behavior(request, context))
        except BaseException as e:
            error = e
            raise
        finally:
            in_flight.dec()
            self.metrics.observe(service, name, _code_after(error, context), time.perf_counter() - start)

    async def around_stream(self, behavior, request, context, method):
        service, name = split_method(method)
        in_flight = self.metrics.in_flight.labels(service, name)
        start, error = time.perf_counter(), None
        in_flight.inc()
        try:
            async for item in behavior(request, context):
                yield item
        except BaseException as e:
            error = asyncio.CancelledError() if isinstance(e, GeneratorExit) else e
            raise
        finally:
            in_flight.dec()
            self.metrics.observe(service, name, _code_after(error, context), time.perf_counter() - start)


class GateInterceptor(WrappingInterceptor):
    """Base for interceptors that refuse a call before it reaches the service."""

    def refusal(self, context: grpc.aio.ServicerContext) -> tuple[grpc.StatusCode, str] | None:
        raise NotImplementedError

    async def around_single(self, behavior, request, context, method):
        refused = self.refusal(context)
        if refused:
            await context.abort(*refused)
        return await _resolve(behavior(request, context))

    async def around_stream(self, behavior, request, context, method):
        refused = self.refusal(context)
        if refused:
            await context.abort(*refused)
        async for item in behavior(request, context):
            yield item


class AuthInterceptor(GateInterceptor):
    """Requires ``authorization: Bearer <token>`` metadata on every call but health checks."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("AuthInterceptor needs a non-empty token")
        self._expected = f"Bearer {token}".encode()

    def applies_to(self, method: str) -> bool:
        return not method.startswith(HEALTH_PREFIX)

    def refusal(self, context):
        sent = dict(context.invocation_metadata() or ()).get("authorization")
        if sent is None:
            return grpc.StatusCode.UNAUTHENTICATED, \
                "missing credentials: send metadata 'authorization: Bearer <token>'"
        if not hmac.compare_digest(str(sent).encode(), self._expected):
            return grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token"
        return None


class ReadinessInterceptor(GateInterceptor):
    """Answers UNAVAILABLE while the service is still starting (health reports NOT_SERVING then)."""

    def __init__(self, is_ready: Callable[[], bool]):
        self.is_ready = is_ready

    def applies_to(self, method: str) -> bool:
        return not method.startswith(HEALTH_PREFIX) and not method.startswith(REFLECTION_PREFIXES)

    def refusal(self, context):
        if self.is_ready():
            return None
        return grpc.StatusCode.UNAVAILABLE, "service is starting (not ready yet); retry when health is SERVING"


@dataclass(frozen=True)
class Undecodable:
    """A request whose bytes did not parse; `ErrorInterceptor` answers it INVALID_ARGUMENT."""

    cause: Exception

    def as_error(self) -> InvalidArgument:
        return InvalidArgument("request", f"could not be parsed ({self.cause}); string fields must be valid "
                                          "UTF-8 and the message must match the service's proto")


class ErrorInterceptor(WrappingInterceptor):
    """Maps exceptions a servicer raises to status codes (`errors.STATUS_BY_ERROR`), and unparsable requests
    (unary ones: a streamed request's messages are parsed by gRPC as they come) to INVALID_ARGUMENT."""

    def deserializer(self, handler):
        parse = handler.request_deserializer
        if handler.request_streaming or parse is None:
            return parse

        def tolerant(data: bytes):
            try:
                return parse(data)
            except Exception as e:  # noqa: BLE001 - answered in around_*, with the reason
                return Undecodable(e)

        return tolerant

    async def around_single(self, behavior, request, context, method):
        try:
            if isinstance(request, Undecodable):
                raise request.as_error()
            return await _resolve(behavior(request, context))
        except (AbortError, asyncio.CancelledError):
            raise
        except Exception as e:
            await self._abort(e, context, method)

    async def around_stream(self, behavior, request, context, method):
        try:
            if isinstance(request, Undecodable):
                raise request.as_error()
            async for item in behavior(request, context):
                yield item
        except (AbortError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as e:
            await self._abort(e, context, method)

    @staticmethod
    async def _abort(error: Exception, context, method: str) -> None:
        code, message = status_for(error)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("%s failed", method, exc_info=error)
        await context.abort(code, message)
