"""A blocking client of the generation service, speaking library types: prompts and `SamplingParams` in,
`SampleOutput`s out, named torch tensors pushed as weight updates.

`r1 generate --target` and the trainer use it, so that generating through the service and in-process are the
same call with the same results. Choices:
- Sampling parameters are checked here first (`SamplingParams.validate`, the library's messages), so a bad
  value fails the same way as in-process before anything is sent; the server checks again.
- `generate` returns the finals by sample index; `stream` yields every Chunk (as `SampleDelta`) and final
  (as `SampleOutput`) as they come, and cancels the call if the caller stops iterating early, which aborts
  the request's samples on the server.
- RESOURCE_EXHAUSTED before the first message (the server's queue was full; nothing was admitted) is retried
  with exponential backoff and jitter for up to `retry_seconds`; every other failure raises the library error
  the server raised (`services/common/errors.py`), with its message.
- `update_weights` slices each tensor's raw little-endian bytes into `chunk_bytes` pieces (the header on the
  first slice, the SHA-256 on the completing one, `last` on the final one), lazily, so memory stays at one
  tensor's bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import grpc
import torch

from r1.engine.types import MAX_SAMPLES, ModelInfo, SampleDelta, SampleOutput, SamplingParams
from r1.errors import InvalidArgument, R1Error
from services.common.retry import backoff, call_with_retry, client_error
from services.generation import convert
from services.protogen.generation.v1 import generation_pb2 as pb
from services.protogen.generation.v1 import generation_pb2_grpc

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class WeightUpdateResult:
    """What the server reports once an update is applied."""

    version: int
    tensors_updated: int
    bytes_received: int
    elapsed_seconds: float


class GenerationClient:
    """``with GenerationClient("host:50051") as client: outputs = client.generate("2 + 2 =", n=4)``

    token: bearer token, if the server wants one; root_certificates: PEM CA to use TLS (None: plaintext);
    timeout: seconds per call (None: no deadline); retry_seconds: how long to keep retrying a full queue.
    """

    def __init__(self, target: str, *, token: str = "", root_certificates: bytes | None = None,
                 timeout: float | None = None, retry_seconds: float = 120.0):
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        self._channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates), options)
                         if root_certificates is not None else grpc.insecure_channel(target, options))
        self._stub = generation_pb2_grpc.GenerationStub(self._channel)
        self.target = target
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    # ------------------------------------------------------------------------------------------ generate

    def generate(self, prompt: str | Sequence[int], *, n: int = 1, sampling: SamplingParams = SamplingParams(),
                 request_id: str = "", return_logprobs: bool = False, skip_special_tokens: bool = True,
                 add_special_tokens: bool = True) -> list[SampleOutput]:
        """The n finished samples, by index. `prompt`: text (tokenized by the server) or token ids."""
        outputs = {item.index: item for item in self.stream(
            prompt, n=n, sampling=sampling, request_id=request_id, return_logprobs=return_logprobs,
            skip_special_tokens=skip_special_tokens, add_special_tokens=add_special_tokens, final_only=True)}
        return [outputs[i] for i in sorted(outputs)]

    def stream(self, prompt: str | Sequence[int], *, n: int = 1, sampling: SamplingParams = SamplingParams(),
               request_id: str = "", return_logprobs: bool = False, skip_special_tokens: bool = True,
               add_special_tokens: bool = True, final_only: bool = False) -> Iterator[SampleDelta | SampleOutput]:
        """Every chunk and final of one Generate call, as they arrive."""
        if not 1 <= n <= MAX_SAMPLES:
            raise InvalidArgument("n", f"must be in [1, {MAX_SAMPLES}], got {n}")
        sampling.validate()
        try:
            request = convert.request_to_proto(
                prompt, request_id=request_id, n=n, sampling=sampling, return_logprobs=return_logprobs,
                skip_special_tokens=skip_special_tokens, add_special_tokens=add_special_tokens,
                final_only=final_only)
        except (TypeError, ValueError) as e:  # e.g. a token id outside int32
            raise InvalidArgument("prompt", f"cannot be sent: {e}") from None
        for wait in self._backoff():
            call = self._stub.Generate(request, timeout=self.timeout, metadata=self._metadata)
            received = False
            try:
                for message in call:
                    received = True
                    yield convert.response_from_proto(message)
                return
            except grpc.RpcError as e:
                if received or e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or wait is None:
                    raise self._error(e) from None
            finally:
                call.cancel()  # no-op once the call completed; aborts the samples if the caller stopped early
            time.sleep(wait)

    def abort(self, request_id: str) -> bool:
        """True if the request was in flight and is being aborted."""
        reply = self._call(lambda: self._stub.Abort(pb.AbortRequest(request_id=request_id), timeout=self.timeout,
                                                    metadata=self._metadata))
        return reply.found

    def model_info(self) -> ModelInfo:
        reply = self._call(lambda: self._stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=self.timeout,
                                                           metadata=self._metadata))
        return convert.model_info_from_proto(reply)

    # ------------------------------------------------------------------------------------------- weights

    def update_weights(self, version: int, tensors: Mapping[str, torch.Tensor],
                       chunk_bytes: int = CHUNK_BYTES) -> WeightUpdateResult:
        """Streams the named tensors (Hugging Face checkpoint names) as one update tagged `version`."""
        if not tensors:
            raise InvalidArgument("tensors", "the update names no tensor")
        if chunk_bytes < 1:
            raise InvalidArgument("chunk_bytes", f"must be >= 1, got {chunk_bytes}")
        for name, tensor in tensors.items():
            if not isinstance(tensor, torch.Tensor):
                raise InvalidArgument(f"tensors[{name}]", f"must be a torch.Tensor, got {type(tensor).__name__}")
            convert.dtype_to_proto(tensor.dtype, f"tensors[{name}]")
        reply = self._call(lambda: self._stub.UpdateWeights(weight_chunks(version, tensors, chunk_bytes),
                                                            timeout=self.timeout, metadata=self._metadata))
        return WeightUpdateResult(reply.version, reply.tensors_updated, reply.bytes_received, reply.elapsed_seconds)

    def load_checkpoint(self, path: str, version: int, revision: str | None = None) -> ModelInfo:
        request = pb.LoadCheckpointRequest(path=path, version=version)
        if revision is not None:
            request.revision = revision
        reply = self._call(lambda: self._stub.LoadCheckpoint(request, timeout=self.timeout, metadata=self._metadata))
        return convert.model_info_from_proto(reply.model_info)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GenerationClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------------

    def _call(self, rpc):
        return call_with_retry(rpc, self.retry_seconds, "generation", self.target)

    def _error(self, e: grpc.RpcError) -> R1Error:
        return client_error(e, "generation", self.target)

    def _backoff(self) -> Iterator[float | None]:
        return backoff(self.retry_seconds)


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """A tensor's raw bytes in C order (little-endian on every host torch supports)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return bytes(flat.view(torch.uint8).numpy()) if flat.numel() else b""


def weight_chunks(version: int, tensors: Mapping[str, torch.Tensor], chunk_bytes: int) -> Iterator[pb.WeightChunk]:
    """The WeightChunk stream of one update (see the proto's rules); `last` is set on the final slice."""
    names = list(tensors)
    for position, name in enumerate(names):
        tensor = tensors[name]
        data = tensor_bytes(tensor)
        digest = hashlib.sha256(data).hexdigest()
        starts = range(0, len(data), chunk_bytes) if data else [0]
        for start in starts:
            end = min(start + chunk_bytes, len(data))
            chunk = pb.WeightChunk(version=version, name=name, data=data[start:end], offset=start)
            if start == 0:
                chunk.dtype = convert.dtype_to_proto(tensor.dtype, f"tensors[{name}]")
                chunk.shape.extend(tensor.shape)
                chunk.total_bytes = len(data)
            if end == len(data):
                chunk.sha256 = digest
                chunk.last = position == len(names) - 1
            yield chunk
