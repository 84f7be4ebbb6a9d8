"""The Verifier RPCs, thin: convert the request, hand the items to the library's `Verifier`, stream back.

Admission is the library's (a batch is admitted whole or refused with RESOURCE_EXHAUSTED); the checks run on
its worker threads and processes, never on the event loop. Results are streamed in completion order, each
with its index, and counted in the metrics as they are sent. When a client hangs up (or its deadline
passes) the items of its batch that have not started are dropped, so an abandoned batch stops costing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Future

from r1.errors import ResourceExhausted
from r1.rewards.code import Toolchain
from r1.rewards.items import Item
from r1.rewards.verifier import Verifier
from services.protogen.verifier.v1 import verifier_pb2 as pb
from services.protogen.verifier.v1 import verifier_pb2_grpc
from services.verifier import convert
from services.verifier.metrics import VerifierMetrics

KIND_DESCRIPTIONS = {
    "math": "Answer equivalence with a reference (boxed / <answer> / final-answer extraction; numeric, "
            "symbolic, sets, intervals, matrices, equations). Reward 0 or 1.",
    "choice": "Multiple-choice letter against the reference letter (simple-evals style extraction). 0 or 1.",
    "code": "Program run against stdin/stdout and assert tests in a sandbox. Reward: fraction of tests "
            "passed, or all-or-nothing.",
    "format": "R1-Zero template: one <think>...</think>, then <answer>...</answer> or \\boxed{}. 0 or 1.",
    "language": "Share of the reasoning's words in the target language, in [0, 1].",
}
LANGUAGE_ENUMS = {"python": pb.LANGUAGE_PYTHON3, "cpp": pb.LANGUAGE_CPP17}


class VerifierServicer(verifier_pb2_grpc.VerifierServicer):
    """`verifier` is set by the service's start; the readiness gate keeps calls out until then."""

    def __init__(self, metrics: VerifierMetrics, max_batch_items: int, verifier: Verifier | None = None):
        self.verifier = verifier
        self.metrics = metrics
        self.max_batch_items = max_batch_items

    async def Verify(self, request: pb.VerifyRequest, context) -> pb.VerifyResult:
        async for result in self._results([convert.single_item(request)], None):
            return result
        raise AssertionError("one item gives one result")

    async def VerifyBatch(self, request: pb.VerifyBatchRequest, context) -> AsyncIterator[pb.VerifyResult]:
        items = convert.batch_items(request, self.max_batch_items)
        concurrency = request.max_concurrency if request.HasField("max_concurrency") else None
        async for result in self._results(items, concurrency):
            yield result

    async def ListKinds(self, request: pb.ListKindsRequest, context) -> pb.ListKindsResponse:
        kinds = [pb.KindInfo(name=name, description=text) for name, text in KIND_DESCRIPTIONS.items()]
        code = kinds[list(KIND_DESCRIPTIONS).index("code")]
        code.isolation_layers.extend(self.verifier.layers)
        code.languages.extend(LANGUAGE_ENUMS[language] for language in Toolchain().languages())
        return pb.ListKindsResponse(kinds=kinds, default_deadline_seconds=self.verifier.config.deadline_seconds,
                                    max_batch_items=self.max_batch_items)

    async def _results(self, items: list[Item], concurrency: int | None) -> AsyncIterator[pb.VerifyResult]:
        try:
            batch = self.verifier.submit_batch(items, concurrency)
        except ResourceExhausted:
            self.metrics.rejected.inc(len(items))
            raise
        loop = asyncio.get_running_loop()
        finished: asyncio.Queue[Future] = asyncio.Queue()

        def deliver(future: Future) -> None:  # on a worker thread
            try:
                loop.call_soon_threadsafe(finished.put_nowait, future)
            except RuntimeError:  # the loop is gone: the server stopped, nobody is waiting
                pass

        for future in batch.futures:
            future.add_done_callback(deliver)
        try:
            for _ in items:
                future = await finished.get()
                if future.cancelled():
                    continue
                verified = future.result()
                self.metrics.observe(verified)
                yield convert.result_to_proto(verified)
        finally:
            batch.cancel()
