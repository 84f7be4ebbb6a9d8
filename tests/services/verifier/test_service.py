"""The verifier service: every kind through Verify and VerifyBatch, admission, cancellation, metrics."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from r1.errors import InvalidArgument
from r1.rewards.code import CodeRequest, IOTest, request_limits
from r1.rewards.items import ChoiceCheck, FormatCheck, Invalid, Item, LanguageCheck, MathCheck
from r1.rewards.verdict import Verdict
from r1.rewards.verifier import Verifier, VerifierConfig
from services.protogen.verifier.v1 import verifier_pb2 as pb
from services.protogen.verifier.v1 import verifier_pb2_grpc
from services.verifier.client import VerifierClient
from tests.services.common.test_server import scrape
from tests.services.verifier.conftest import running_verifier

DOUBLER = CodeRequest("python", "", io_tests=(IOTest("3", "6"), IOTest("10", "20")))
CPP_DOUBLER = CodeRequest("cpp", "", io_tests=(IOTest("21", "42"),))
MIXED = [
    Item("so \\boxed{\\frac{1}{2}}", MathCheck("0.5"), id="math"),
    Item("Answer: C", ChoiceCheck("B"), id="choice"),
    Item("```python\nprint(int(input()) * 2)\n```", DOUBLER, id="python"),
    Item("```cpp\n#include <iostream>\nint main(){long x; std::cin >> x; std::cout << 2 * x;}\n```",
         CPP_DOUBLER, id="cpp"),
    Item("<think>2 and 2</think><answer>4</answer>", FormatCheck(), id="format"),
    Item("<think>zwei plus zwei</think>", LanguageCheck("zh"), id="language"),
    Item("", Invalid("math", "line 9: reference: is required"), id="unreadable"),
]


def sleeper(seconds: float, deadline: float | None = None, item_id: str = "") -> Item:
    request = CodeRequest("python", f"import time\ntime.sleep({seconds})", io_tests=(IOTest("", ""),),
                          limits=request_limits(time_limit_seconds=seconds + 5))
    return Item("", request, id=item_id, deadline=deadline)


def stub(server) -> verifier_pb2_grpc.VerifierStub:
    return verifier_pb2_grpc.VerifierStub(grpc.insecure_channel(server.target))


def test_list_kinds_names_the_kinds_languages_and_isolation_layers(client):
    reply = client.list_kinds()
    kinds = {kind.name: kind for kind in reply.kinds}
    assert list(kinds) == ["math", "choice", "code", "format", "language"]
    assert {"userns", "netns", "rlimits"} <= set(kinds["code"].isolation_layers)
    assert set(kinds["code"].languages) == {pb.LANGUAGE_PYTHON3, pb.LANGUAGE_CPP17}
    assert reply.default_deadline_seconds == 30 and reply.max_batch_items == 4096


def test_a_mixed_batch_matches_in_process_item_for_item(client):
    remote = {v.index: v for v in client.verify_batch(MIXED)}
    with Verifier(VerifierConfig(workers=2, math_workers=1)) as verifier:
        local = {v.index: v for v in verifier.verify_batch(MIXED)}
    assert sorted(remote) == list(range(len(MIXED)))
    for i in range(len(MIXED)):
        assert (remote[i].id, remote[i].kind, remote[i].result) == (local[i].id, local[i].kind, local[i].result)
    verdicts = [remote[i].result.verdict for i in range(len(MIXED))]
    assert verdicts == [Verdict.CORRECT, Verdict.WRONG, Verdict.CORRECT, Verdict.CORRECT, Verdict.CORRECT,
                        Verdict.WRONG, Verdict.INVALID_INPUT]


def test_verify_checks_one_item(client):
    verified = client.verify(Item("The answer is $\\boxed{x = 5}$.", MathCheck("5"), id="one"))
    assert verified.result.verdict == Verdict.CORRECT and verified.id == "one" and verified.index == 0


def test_results_stream_as_they_finish_each_with_its_index(server):
    items = [sleeper(1.5, item_id="slow"), Item("Answer: A", ChoiceCheck("A"), id="fast")]
    request = pb.VerifyBatchRequest(items=[_wire(item) for item in items], max_concurrency=2)
    replies = list(stub(server).VerifyBatch(request, timeout=60))
    assert [(r.index, r.id) for r in replies] == [(1, "fast"), (0, "slow")]


def test_malformed_requests_fail_with_invalid_argument_naming_the_field(server):
    for request, field in [(pb.VerifyBatchRequest(), "items"),
                           (pb.VerifyBatchRequest(items=[pb.VerifyItem()], deadline_seconds=-1), "deadline_seconds")]:
        with pytest.raises(grpc.RpcError) as raised:
            list(stub(server).VerifyBatch(request, timeout=10))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith(f"{field}: ")
    with VerifierClient(server.target) as client, pytest.raises(InvalidArgument, match="items: must hold"):
        list(client._stream(pb.VerifyBatchRequest()))


def test_an_item_past_its_deadline_is_a_timeout_and_the_rest_of_the_batch_goes_on(client):
    items = [sleeper(20, deadline=1.0), Item("Answer: A", ChoiceCheck("A"))]
    results = {v.index: v for v in client.verify_batch(items)}
    assert results[0].result.verdict == Verdict.TIMEOUT and results[0].elapsed < 20
    assert results[1].result.verdict == Verdict.CORRECT


def test_a_full_queue_answers_resource_exhausted_and_admits_again_once_drained():
    with running_verifier(max_pending=3, max_batch_items=3) as server:
        busy = threading.Thread(target=lambda: list(stub(server).VerifyBatch(pb.VerifyBatchRequest(
            items=[_wire(sleeper(1.5))] * 3), timeout=60)))
        busy.start()
        _wait_for(lambda: scrape(server.metrics_port)["r1_verifier_queue_depth"][()] == 3)
        with pytest.raises(grpc.RpcError) as raised:
            stub(server).Verify(pb.VerifyRequest(item=_wire(Item("Answer: A", ChoiceCheck("A")))), timeout=10)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "queue is full" in raised.value.details()
        with VerifierClient(server.target, timeout=60) as patient:  # backs off and retries until admitted
            assert patient.verify(Item("Answer: A", ChoiceCheck("A"))).result.verdict == Verdict.CORRECT
        busy.join()
        assert scrape(server.metrics_port)["r1_verifier_rejected_items_total"][()] >= 1


def test_a_client_that_hangs_up_stops_its_batch():
    with running_verifier(workers=1) as server:
        call = stub(server).VerifyBatch(pb.VerifyBatchRequest(items=[_wire(sleeper(1))] * 20), timeout=60)
        next(call)  # the first result: the batch is running
        call.cancel()
        depth = lambda: scrape(server.metrics_port)["r1_verifier_queue_depth"][()]  # noqa: E731
        _wait_for(lambda: depth() == 0, timeout=10)
        runs = scrape(server.metrics_port)["r1_verifier_sandbox_runs_total"][(("status", "OK"),)]
        assert runs < 6  # the probe, the first two or three sleepers; not all twenty


def test_metrics_count_items_by_kind_and_verdict(server, client):
    list(client.verify_batch(MIXED))
    samples = scrape(server.metrics_port, until=lambda s: s["r1_verifier_queue_depth"][()] == 0)
    items = samples["r1_verifier_items_total"]
    assert items[(("kind", "math"), ("verdict", "CORRECT"))] >= 1
    assert items[(("kind", "code"), ("verdict", "CORRECT"))] >= 2
    assert samples["r1_verifier_item_duration_seconds_count"][(("kind", "code"),)] >= 2
    assert samples["r1_verifier_sandbox_runs_total"][(("status", "OK"),)] >= 4
    assert samples["r1_verifier_isolation_layer"][(("layer", "netns"),)] == 1
    assert samples["r1_verifier_queue_depth"][()] == 0


def _wire(item: Item) -> pb.VerifyItem:
    from services.verifier import convert

    return convert.item_to_proto(item)


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
