"""A blocking client of the verifier service, speaking library types: `Item`s in, `Verified` out.

`r1 verify --target` and the trainer use it, so that verifying through the service and in-process are the
same call with the same results. Choices:
- `Invalid` items (lines or records that could not be read) are answered here, INVALID_INPUT, exactly as
  the in-process `Verifier` answers them; only checkable items travel.
- Batches larger than the server's `max_batch_items` (asked once, via ListKinds) are split.
- RESOURCE_EXHAUSTED (the server's queue is full; nothing of the batch was admitted) is retried with
  exponential backoff and jitter for up to `retry_seconds`; every other failure raises the library error
  the server raised (`services/common/errors.py`), with its message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import grpc

from r1.errors import R1Error
from r1.rewards.items import Invalid, Item
from r1.rewards.verdict import RewardResult, Verdict
from r1.rewards.verifier import Verified
from services.common.retry import backoff, call_with_retry, client_error
from services.protogen.verifier.v1 import verifier_pb2 as pb
from services.protogen.verifier.v1 import verifier_pb2_grpc
from services.verifier import convert

MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class VerifierClient:
    """``with VerifierClient("host:50052") as client: for v in client.verify_batch(items): ...``

    token: bearer token, if the server wants one; root_certificates: PEM CA to use TLS (None: plaintext);
    timeout: seconds per call (None: no gRPC deadline; items still have theirs); retry_seconds: how long to
    keep retrying a full queue.
    """

    def __init__(self, target: str, *, token: str = "", root_certificates: bytes | None = None,
                 timeout: float | None = None, retry_seconds: float = 120.0):
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        self._channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates), options)
                         if root_certificates is not None else grpc.insecure_channel(target, options))
        self._stub = verifier_pb2_grpc.VerifierStub(self._channel)
        self.target = target
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._max_batch: int | None = None

    def list_kinds(self) -> pb.ListKindsResponse:
        return self._call(lambda: self._stub.ListKinds(pb.ListKindsRequest(), timeout=self.timeout,
                                                       metadata=self._metadata))

    def verify(self, item: Item) -> Verified:
        """One item (Verify)."""
        if isinstance(item.check, Invalid):
            return _answer_locally(0, item)
        reply = self._call(lambda: self._stub.Verify(pb.VerifyRequest(item=convert.item_to_proto(item)),
                                                     timeout=self.timeout, metadata=self._metadata))
        return convert.result_from_proto(reply, item.kind)

    def verify_batch(self, items: Sequence[Item], concurrency: int | None = None) -> Iterator[Verified]:
        """Every item's result, as they finish, with its index into `items` (VerifyBatch, split as needed)."""
        sent = []
        for index, item in enumerate(items):
            if isinstance(item.check, Invalid):
                yield _answer_locally(index, item)
            else:
                sent.append(index)
        chunk = self._max_batch_items()
        for start in range(0, len(sent), chunk):
            indices = sent[start:start + chunk]
            request = pb.VerifyBatchRequest(items=[convert.item_to_proto(items[i]) for i in indices])
            if concurrency is not None:
                request.max_concurrency = concurrency
            for reply in self._stream(request):
                index = indices[reply.index]
                verified = convert.result_from_proto(reply, items[index].kind)
                yield Verified(index, verified.id, verified.kind, verified.result, verified.elapsed)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> VerifierClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------------

    def _max_batch_items(self) -> int:
        if self._max_batch is None:
            self._max_batch = self.list_kinds().max_batch_items or 1 << 30
        return self._max_batch

    def _stream(self, request: pb.VerifyBatchRequest) -> Iterator[pb.VerifyResult]:
        """The batch's results; retries a refused admission, which always comes before the first result."""
        for wait in self._backoff():
            call = self._stub.VerifyBatch(request, timeout=self.timeout, metadata=self._metadata)
            try:
                yield from call
                return
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or wait is None:
                    raise self._error(e) from None
            time.sleep(wait)

    def _call(self, rpc):
        return call_with_retry(rpc, self.retry_seconds, "verifier", self.target)

    def _error(self, e: grpc.RpcError) -> R1Error:
        return client_error(e, "verifier", self.target)

    def _backoff(self) -> Iterator[float | None]:
        return backoff(self.retry_seconds)


def _answer_locally(index: int, item: Item) -> Verified:
    return Verified(index, item.id, item.kind, RewardResult(0.0, Verdict.INVALID_INPUT, item.check.reason), 0.0)
