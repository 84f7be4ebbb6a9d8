"""Hostile and malformed input through the service: each item gets a verdict within its deadline, the
service stays up, and a normal batch sent alongside is unaffected."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from r1.rewards.code import CodeRequest, IOTest
from r1.rewards.items import ChoiceCheck, FormatCheck, Item, LanguageCheck, MathCheck
from r1.rewards.verdict import Verdict
from r1.rewards.verifier import Verifier, VerifierConfig
from services.protogen.verifier.v1 import verifier_pb2 as pb

DEADLINE = 5.0
MEGABYTE = "x" * 1_000_000
ECHO = CodeRequest("python", "", io_tests=(IOTest("1", "1"),))

HOSTILE = {
    "1 MB response, math": (Item(MEGABYTE + " \\boxed{5}", MathCheck("5")), {Verdict.CORRECT}),
    "1 MB response, choice": (Item(MEGABYTE, ChoiceCheck("A")), {Verdict.NO_ANSWER}),
    "1 MB response, format": (Item(MEGABYTE, FormatCheck()), {Verdict.FORMAT_ERROR}),
    "1 MB response, language": (Item(MEGABYTE, LanguageCheck("en")), {Verdict.CORRECT, Verdict.WRONG}),
    "1 MB response, code": (Item(MEGABYTE, ECHO), {Verdict.RUNTIME_ERROR}),
    "10,000 nested braces": (Item("\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}", MathCheck("1")),
                             {Verdict.CORRECT, Verdict.WRONG}),
    "10^{10^{10^{10}}} answered": (Item("\\boxed{10^{10^{10^{10}}}}", MathCheck("1")),
                                   {Verdict.WRONG, Verdict.TIMEOUT}),
    "10^{10^{10^{10}}} as reference": (Item("\\boxed{1}", MathCheck("10^{10^{10^{10}}}")),
                                       {Verdict.WRONG, Verdict.TIMEOUT}),
    "\\frac{1}{0}": (Item("\\boxed{\\frac{1}{0}}", MathCheck("1")), {Verdict.WRONG}),
    "empty math reference": (Item("\\boxed{1}", MathCheck("")), {Verdict.INVALID_INPUT}),
    "empty choice reference": (Item("Answer: A", ChoiceCheck("")), {Verdict.INVALID_INPUT}),
    "empty target language": (Item("<think>hi</think>", LanguageCheck("")), {Verdict.INVALID_INPUT}),
    "lone surrogate, cleaned as r1 verify reads it": (Item("? \\boxed{2}", MathCheck("2")), {Verdict.CORRECT}),
}
NORMAL = [Item(f"\\boxed{{{n}}}", MathCheck(str(n if n % 3 else n + 1))) for n in range(60)]


def test_each_hostile_item_gets_its_verdict_within_its_deadline_while_normal_traffic_flows(client, server):
    items = [item for item, _ in HOSTILE.values()]
    items = [Item(i.response, i.check, id=name, deadline=DEADLINE) for i, name in zip(items, HOSTILE)]
    normal: dict[int, object] = {}
    alongside = threading.Thread(target=lambda: normal.update((v.index, v.result) for v in
                                                              client.verify_batch(NORMAL)))
    alongside.start()
    results = {v.id: v for v in client.verify_batch(items)}
    alongside.join()
    for name, (_, verdicts) in HOSTILE.items():
        assert results[name].result.verdict in verdicts, (name, results[name].result)
        assert results[name].elapsed <= DEADLINE + 1.0, (name, results[name].elapsed)
    with Verifier(VerifierConfig(workers=2, math_workers=1)) as verifier:
        expected = {v.index: v.result for v in verifier.verify_batch(NORMAL)}
    assert normal == expected
    assert sum(r.verdict == Verdict.CORRECT for r in normal.values()) == 40
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("method, message", [("Verify", pb.VerifyRequest), ("VerifyBatch", pb.VerifyBatchRequest)])
def test_invalid_utf8_on_the_wire_is_invalid_argument_and_the_next_call_is_served(server, client, method, message):
    item = pb.VerifyItem(response="@@ \\boxed{5}", math=pb.MathItem(reference="5"))
    wire = (message(item=item) if method == "Verify" else message(items=[item])).SerializeToString()
    broken = wire.replace(b"@@", b"\xff\xfe")
    with grpc.insecure_channel(server.target) as channel:
        call = getattr(channel, "unary_unary" if method == "Verify" else "unary_stream")(
            f"/r1.verifier.v1.Verifier/{method}", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as raised:
            reply = call(broken, timeout=10)
            list(reply) if method == "VerifyBatch" else reply
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in raised.value.details()
    assert client.verify(Item("\\boxed{5}", MathCheck("5"))).result.verdict == Verdict.CORRECT
