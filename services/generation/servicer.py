"""The Generation RPCs, thin: convert the request, one backend call, convert back.

- Generate: the prompt is tokenized (text) or taken verbatim (token ids), the backend validates the whole
  request (InvalidArgument naming the field) and streams a `SampleDelta` per decode step per sample and one
  `SampleOutput` per sample; each becomes a Chunk (left out with `final_only`) or a final SampleResult. When
  the client cancels, grpc.aio cancels this handler and the backend's stream is closed, which aborts the
  request's samples and frees their slots.
- Abort: `backend.abort`, idempotent.
- UpdateWeights: one update at a time (an asyncio.Lock, shared with LoadCheckpoint, so a second update
  waits and is then checked against the version the first one left). Chunks are assembled and checked as
  they arrive (`weights.py`); only a complete, checksummed update reaches `backend.update_weights`, which
  checks names, shapes and dtypes against the served model and swaps between two decode steps. A stream
  that ends early or is cancelled leaves the served weights untouched.
  Once the complete update is handed to the backend it runs to its end even if the caller hangs up then.
- LoadCheckpoint: `backend.load_checkpoint` under the same lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from r1.engine.types import Backend, SampleDelta
from r1.errors import InvalidArgument
from services.generation import convert
from services.generation.metrics import GenerationMetrics
from services.generation.weights import WeightAssembler
from services.protogen.generation.v1 import generation_pb2 as pb
from services.protogen.generation.v1 import generation_pb2_grpc


class GenerationServicer(generation_pb2_grpc.GenerationServicer):
    """`backend` is set by the service's start; the readiness gate keeps calls out until then.

    max_update_bytes: most tensor bytes one UpdateWeights may carry (0: no limit)."""

    def __init__(self, metrics: GenerationMetrics, max_update_bytes: int = 0, backend: Backend | None = None):
        self.backend = backend
        self.metrics = metrics
        self.max_update_bytes = max_update_bytes
        self._weights_lock = asyncio.Lock()

    async def Generate(self, request: pb.GenerateRequest, context) -> AsyncIterator[pb.GenerateResponse]:
        backend = self.backend
        generation = convert.request_from_proto(request, backend.tokenize)
        async with aclosing(backend.generate(generation)) as stream:
            async for item in stream:
                if isinstance(item, SampleDelta):
                    if not request.final_only:
                        yield convert.delta_to_proto(item)
                else:
                    self.metrics.output(item)
                    yield convert.output_to_proto(item)

    async def Abort(self, request: pb.AbortRequest, context) -> pb.AbortResponse:
        if not request.request_id:
            raise InvalidArgument("request_id", "is required: the GenerateRequest.request_id to abort")
        return pb.AbortResponse(found=await self.backend.abort(request.request_id))

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context) -> pb.ModelInfo:
        return convert.model_info_to_proto(self.backend.info)

    async def UpdateWeights(self, request_iterator: AsyncIterator[pb.WeightChunk],
                            context) -> pb.UpdateWeightsResponse:
        async with self._weights_lock:
            assembler = WeightAssembler(self.backend.info.weight_version, self.max_update_bytes)
            async for chunk in request_iterator:
                assembler.add(chunk)
            update = assembler.finish()
            updated = await _committed(self.backend.update_weights(update.version, update.tensors))
            elapsed = time.perf_counter() - update.started
        self.metrics.update_seconds.observe(elapsed)
        return pb.UpdateWeightsResponse(version=update.version, tensors_updated=updated,
                                        bytes_received=update.bytes_received, elapsed_seconds=elapsed)

    async def LoadCheckpoint(self, request: pb.LoadCheckpointRequest, context) -> pb.LoadCheckpointResponse:
        if not request.path:
            raise InvalidArgument("path", "is required: a checkpoint directory or hub id")
        revision = request.revision if request.HasField("revision") else None
        async with self._weights_lock:
            started = time.perf_counter()
            info = await _committed(self.backend.load_checkpoint(request.path, request.version, revision))
        self.metrics.update_seconds.observe(time.perf_counter() - started)
        return pb.LoadCheckpointResponse(version=info.weight_version, model_info=convert.model_info_to_proto(info))


async def _committed(work):
    """Runs a weight change to its end even if the call is cancelled meanwhile, holding the caller's lock until
    then: once a complete update is handed to the backend it is applied (or refused) whole, never left half
    way, and a second update cannot start beside it."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
