"""32 concurrent gRPC clients x 20 Generate calls with n = 4 each: no errors, every call gets its 4 finals
(streamed and final_only calls mixed), greedy calls agree with each other, and the engine ends idle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from r1.engine.types import FinishReason, SampleDelta, SampleOutput, SamplingParams
from services.generation.client import GenerationClient
from tests.services.common.test_server import scrape

CLIENTS = 32
CALLS = 20
N = 4
MAX_TOKENS = 8


def test_32_concurrent_clients_each_get_every_final(server):
    def one_client(k: int) -> list[tuple[int, list[SampleOutput], int]]:
        results = []
        with GenerationClient(server.target, timeout=300) as client:
            for call in range(CALLS):
                prompt = [0, 5 + k, 9 + call % 7]
                greedy = call % 4 == 0
                sampling = SamplingParams(temperature=0 if greedy else 0.9, seed=None if greedy else k * CALLS + call,
                                          max_tokens=MAX_TOKENS, ignore_eos=call % 2 == 0)
                items = list(client.stream(prompt, n=N, sampling=sampling, final_only=call % 3 == 0))
                finals = sorted((i for i in items if isinstance(i, SampleOutput)), key=lambda o: o.index)
                chunks = sum(isinstance(i, SampleDelta) for i in items)
                results.append((call, finals, chunks))
        return results

    with ThreadPoolExecutor(CLIENTS) as pool:
        per_client = list(pool.map(one_client, range(CLIENTS)))
    total = 0
    for results in per_client:
        assert len(results) == CALLS
        for call, finals, chunks in results:
            total += 1
            assert [f.index for f in finals] == list(range(N))
            assert all(f.finish_reason in (FinishReason.STOP, FinishReason.LENGTH) for f in finals)
            assert all(1 <= len(f.token_ids) <= MAX_TOKENS for f in finals)
            if call % 2 == 0:
                assert all(len(f.token_ids) == MAX_TOKENS for f in finals)
            if call % 4 == 0:  # greedy: the n samples agree
                assert len({f.token_ids for f in finals}) == 1
            assert (chunks == 0) == (call % 3 == 0)
    assert total == CLIENTS * CALLS
    samples = scrape(server.metrics_port, until=lambda s: generate_codes(s) == {"OK": CLIENTS * CALLS})
    assert generate_codes(samples) == {"OK": CLIENTS * CALLS}  # this module's own server: no call failed
    assert samples["r1_generation_requests_running"][()] == 0 and samples["r1_generation_requests_waiting"][()] == 0


def generate_codes(samples) -> dict[str, float]:
    return {dict(labels)["code"]: count for labels, count in samples["r1_grpc_requests_total"].items()
            if dict(labels)["method"] == "Generate"}
