"""A small service on the real verifier contract, whose behaviour the tests steer through `item.id`.

id "sleep:<seconds>"   answers after sleeping (in-flight calls for the drain test)
id "raise:<Error>"     raises r1.errors.<Error> (or RuntimeError for "raise:bug")
anything else          answers CORRECT with the id echoed back
An item without a kind fails validation (INVALID_ARGUMENT naming ``item.kind``).

Run as a script it serves until SIGTERM: ``python fixture_service.py PORT_FILE [START_DELAY | fail]``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from r1 import errors
from services.common.config import ServerConfig
from services.common.server import Service, serve
from services.common.validate import require_oneof
from services.protogen.verifier.v1 import verifier_pb2, verifier_pb2_grpc

SERVICE_NAME = verifier_pb2.DESCRIPTOR.services_by_name["Verifier"].full_name


async def answer(item: verifier_pb2.VerifyItem, path: str, index: int = 0) -> verifier_pb2.VerifyResult:
    require_oneof(item, "kind", f"{path}.kind")
    action, _, arg = item.id.partition(":")
    if action == "sleep":
        await asyncio.sleep(float(arg))
    elif action == "raise":
        raise RuntimeError("secret internal detail") if arg == "bug" else getattr(errors, arg)("item.id", "told to")
    return verifier_pb2.VerifyResult(index=index, id=item.id, reward=1.0, verdict=verifier_pb2.VERDICT_CORRECT)


class FixtureVerifier(verifier_pb2_grpc.VerifierServicer):
    async def Verify(self, request, context):
        return await answer(request.item, "item")

    async def VerifyBatch(self, request, context):
        for i, item in enumerate(request.items):
            yield await answer(item, f"items[{i}]", i)


def build(start_delay: float = 0.0, stopped: list | None = None, fail_start: bool = False) -> Service:
    async def start():
        await asyncio.sleep(start_delay)
        if fail_start:
            raise RuntimeError("model file is corrupt")

    async def stop():
        if stopped is not None:
            stopped.append(True)

    return Service(name=SERVICE_NAME, start=start, stop=stop,
                   register=lambda server: verifier_pb2_grpc.add_VerifierServicer_to_server(FixtureVerifier(), server))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    config = ServerConfig(host="127.0.0.1", port=0, metrics_host="127.0.0.1", metrics_port=0, grace_seconds=10)
    mode = sys.argv[2] if len(sys.argv) > 2 else "0"
    service = build(fail_start=True) if mode == "fail" else build(float(mode))
    sys.exit(asyncio.run(serve(service, config, port_file=sys.argv[1])))
