"""The generation service over a real torch engine: every RPC, the stream's shape (chunks, then exactly one
final per sample), final_only, n samples, text vs token-id prompts, abort and cancellation freeing their
slots, bad input named by field while the server keeps serving, and the metrics endpoint."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from r1.config import load_config
from r1.engine.torch_engine import TorchEngineConfig
from r1.engine.types import FinishReason, SampleDelta, SampleOutput, SamplingParams
from r1.errors import AlreadyExists, InvalidArgument, NotFound
from services.common.harness import ServerThread
from services.common.local import health_status
from services.generation.app import BACKENDS, Config, EngineSection, build
from services.generation.client import GenerationClient
from services.protogen.generation.v1 import generation_pb2 as pb
from tests.services.common.test_server import scrape
from tests.services.generation.conftest import CONTEXT, running_generation

PROMPT = (0, 17, 99, 250, 31, 8, 77)
GREEDY = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
LONG = SamplingParams(temperature=0, max_tokens=CONTEXT - 8, ignore_eos=True)


def collect(client: GenerationClient, prompt, **kwargs) -> tuple[dict[int, list[SampleDelta]], dict[int, SampleOutput]]:
    """Deltas and the final per sample index, checking the stream's order: no delta after its final, one final."""
    deltas: dict[int, list[SampleDelta]] = {}
    finals: dict[int, SampleOutput] = {}
    for item in client.stream(prompt, **kwargs):
        assert item.index not in finals, f"an item after sample {item.index}'s final"
        if isinstance(item, SampleDelta):
            deltas.setdefault(item.index, []).append(item)
        else:
            finals[item.index] = item
    return deltas, finals


def running(server) -> float:
    return scrape(server.metrics_port)["r1_generation_requests_running"][()]


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_model_info_describes_the_served_teacher(client, teacher_dir):
    info = client.model_info()
    assert (info.architecture, info.backend, info.dtype) == ("DeepseekV3ForCausalLM", "torch", "float32")
    assert (info.model_id, info.checkpoint) == (str(teacher_dir), str(teacher_dir))
    assert info.weight_version == 0 and info.max_context_tokens == CONTEXT and info.vocab_size == 400
    assert info.eos_token_ids == (1,) and info.bos_token_id == 0 and info.mtp_depth == 1
    assert info.spec_tokens == 0 and info.parameter_count > 0


def test_chunks_then_one_final_per_sample_and_the_deltas_add_up(client):
    sampling = SamplingParams(temperature=1.0, seed=7, max_tokens=12)
    deltas, finals = collect(client, PROMPT, n=3, sampling=sampling, return_logprobs=True)
    assert sorted(finals) == [0, 1, 2]
    for index, final in finals.items():
        mine = deltas[index]
        assert tuple(t for d in mine for t in d.token_ids) == final.token_ids
        assert tuple(p for d in mine for p in d.logprobs) == final.logprobs
        assert "".join(d.text for d in mine) == final.text
        assert len(final.logprobs) == len(final.token_ids) and all(p <= 0 for p in final.logprobs)
        assert final.prompt_tokens == len(PROMPT) and final.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
        assert final.weight_version == final.last_weight_version == 0
    assert len({final.token_ids for final in finals.values()}) > 1  # seed + i: the samples differ


def test_final_only_sends_just_the_finals_and_they_equal_the_streamed_ones(client):
    sampling = SamplingParams(temperature=0.8, seed=3, max_tokens=10, ignore_eos=True)
    _, streamed = collect(client, PROMPT, n=2, sampling=sampling)
    items = list(client.stream(PROMPT, n=2, sampling=sampling, final_only=True))
    assert all(isinstance(item, SampleOutput) for item in items) and len(items) == 2
    assert {item.index: item for item in items} == streamed
    assert client.generate(PROMPT, n=2, sampling=sampling) == [streamed[0], streamed[1]]


def test_n_greedy_samples_are_identical_and_unset_fields_take_the_proto_defaults(client, stub):
    outputs = client.generate(PROMPT, n=4, sampling=GREEDY)
    assert [o.index for o in outputs] == [0, 1, 2, 3] and len({o.token_ids for o in outputs}) == 1
    assert all(len(o.token_ids) == 8 and o.finish_reason is FinishReason.LENGTH for o in outputs)
    # a bare request: n 1, temperature 1, max_tokens 256 (capped by the context), no logprobs
    [reply] = list(stub.Generate(pb.GenerateRequest(token_ids=pb.TokenIds(ids=PROMPT), final_only=True), timeout=60))
    assert reply.final.index == 0 and not reply.final.logprobs
    assert 1 <= len(reply.final.token_ids) <= min(256, CONTEXT - len(PROMPT))


def test_a_text_prompt_is_its_tokenization_with_special_tokens_by_default(client, tokenizer):
    text = "2 + 2 = 4"
    with_bos = tokenizer(text)["input_ids"]
    without = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert with_bos != without
    assert client.generate(text, sampling=GREEDY) == client.generate(with_bos, sampling=GREEDY)
    plain = client.generate(text, sampling=GREEDY, add_special_tokens=False)
    assert plain == client.generate(without, sampling=GREEDY) and plain[0].prompt_tokens == len(without)


def test_stop_strings_and_matched_stop_cross_the_wire(client, tokenizer):
    [free] = client.generate(PROMPT, sampling=GREEDY)
    stop = free.text[2:5]
    [stopped] = client.generate(PROMPT, sampling=SamplingParams(temperature=0, max_tokens=8, ignore_eos=True,
                                                                stop=(stop,)))
    assert stopped.finish_reason is FinishReason.STOP_STRING and stopped.matched_stop == stop
    assert stopped.text == free.text[:free.text.index(stop)]


def test_abort_ends_the_samples_with_abort_and_frees_their_slots(server, client):
    items: list = []
    started = threading.Event()

    def long_call():
        for item in client.stream(PROMPT, n=2, sampling=LONG, request_id="long"):
            items.append(item)
            started.set()

    caller = threading.Thread(target=long_call)
    caller.start()
    assert started.wait(60)
    assert client.abort("long") is True
    caller.join(60)
    finals = [item for item in items if isinstance(item, SampleOutput)]
    assert sorted(f.index for f in finals) == [0, 1]
    assert all(f.finish_reason is FinishReason.ABORT and len(f.token_ids) < LONG.max_tokens for f in finals)
    wait_for(lambda: running(server) == 0)
    assert client.abort("long") is False  # idempotent: nothing in flight by that id any more
    with pytest.raises(InvalidArgument, match="request_id: is required"):
        client.abort("")
    assert len(client.generate(PROMPT, sampling=GREEDY)[0].token_ids) == 8


def test_cancelling_the_call_aborts_the_request(server, stub, client):
    call = stub.Generate(pb.GenerateRequest(request_id="cancelled", token_ids=pb.TokenIds(ids=PROMPT), n=3,
                                            sampling=pb.SamplingParams(temperature=0, max_tokens=LONG.max_tokens,
                                                                       ignore_eos=True)), timeout=60)
    next(call)
    call.cancel()
    wait_for(lambda: running(server) == 0)
    assert client.abort("cancelled") is False
    assert len(client.generate(PROMPT, sampling=GREEDY)[0].token_ids) == 8


def test_a_request_id_in_flight_cannot_be_reused(client):
    stream = client.stream(PROMPT, sampling=LONG, request_id="twice")
    next(stream)
    with pytest.raises(AlreadyExists, match="twice"):
        client.generate(PROMPT, sampling=GREEDY, request_id="twice")
    stream.close()


BAD = {
    "no prompt": (pb.GenerateRequest(), "prompt"),
    "empty token ids": (pb.GenerateRequest(token_ids=pb.TokenIds()), "prompt"),
    "empty text": (pb.GenerateRequest(text=""), "prompt.text"),
    "longer than the context": (pb.GenerateRequest(token_ids=pb.TokenIds(ids=[5] * CONTEXT)), "prompt"),
    "unknown token ids": (pb.GenerateRequest(token_ids=pb.TokenIds(ids=[0, 400, 7, -1])), "prompt.token_ids[1]"),
    "n = 0": (pb.GenerateRequest(text="hi", n=0), "n"),
    "n = 10^6": (pb.GenerateRequest(text="hi", n=10 ** 6), "n"),
    "negative temperature": (pb.GenerateRequest(text="hi", sampling=pb.SamplingParams(temperature=-0.5)),
                             "sampling.temperature"),
    "top_p 0": (pb.GenerateRequest(text="hi", sampling=pb.SamplingParams(top_p=0)), "sampling.top_p"),
    "top_p 1.5": (pb.GenerateRequest(text="hi", sampling=pb.SamplingParams(top_p=1.5)), "sampling.top_p"),
    "max_tokens 0": (pb.GenerateRequest(text="hi", sampling=pb.SamplingParams(max_tokens=0)), "sampling.max_tokens"),
    "17 stop strings": (pb.GenerateRequest(text="hi", sampling=pb.SamplingParams(stop=["x"] * 17)), "sampling.stop"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_invalid_argument_naming_the_field_and_the_server_keeps_serving(stub, client, case):
    request, field = BAD[case]
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.Generate(request, timeout=30))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert raised.value.details().startswith(f"{field}: "), raised.value.details()
    assert len(client.generate(PROMPT, sampling=GREEDY)[0].token_ids) == 8


def test_metrics_count_tokens_and_report_the_engine_state(server, client):
    before = scrape(server.metrics_port)["r1_generation_tokens_total"]
    client.generate(PROMPT, n=2, sampling=GREEDY)
    samples = scrape(server.metrics_port)
    tokens = samples["r1_generation_tokens_total"]
    assert tokens[(("kind", "prompt"),)] - before[(("kind", "prompt"),)] == len(PROMPT)  # once for n samples
    assert tokens[(("kind", "completion"),)] - before[(("kind", "completion"),)] == 16
    assert samples["r1_generation_requests_running"][()] == 0 and samples["r1_generation_requests_waiting"][()] == 0
    assert samples["r1_generation_kv_cache_bytes"][()] == 0
    assert samples["r1_generation_time_to_first_token_seconds_count"][()] >= 1
    assert samples["r1_generation_inter_token_latency_seconds_count"][()] >= 7
    assert samples["r1_generation_weight_version"][()] == 0
    calls = samples["r1_grpc_requests_total"]
    assert calls[(("code", "OK"), ("method", "Generate"), ("service", "r1.generation.v1.Generation"))] >= 1


def test_speculative_decoding_is_counted_per_position(patterned_teacher_dir):
    with running_generation(patterned_teacher_dir, spec_tokens=1) as server, \
            GenerationClient(server.target, timeout=60) as client:
        assert client.model_info().spec_tokens == 1
        outputs = client.generate([0, 40, 41, 42], n=2, sampling=SamplingParams(temperature=0, max_tokens=24,
                                                                                 ignore_eos=True))
        assert all(o.spec_draft_tokens > 0 and 0 < o.spec_accepted_tokens <= o.spec_draft_tokens for o in outputs)
        samples = scrape(server.metrics_port)
        drafted = samples["r1_spec_decode_draft_tokens_total"][()]
        accepted = samples["r1_spec_decode_accepted_tokens_total"][()]
        assert drafted == sum(o.spec_draft_tokens for o in outputs)
        assert accepted == sum(o.spec_accepted_tokens for o in outputs) > 0
        assert samples["r1_spec_decode_accepted_tokens_by_position_total"][(("position", "1"),)] == accepted
        assert samples["r1_generation_tokens_total"][(("kind", "completion"),)] == 48


def test_the_backend_is_chosen_by_name_from_one_table_and_configured_by_section():
    assert list(BACKENDS) == ["torch", "vllm", "sglang"]
    with pytest.raises(InvalidArgument, match="engine.backend: unknown backend 'tgi'; valid: torch, vllm, sglang"):
        build(Config(engine=EngineSection(backend="tgi")))
    with pytest.raises(InvalidArgument, match="is required: a checkpoint directory"):
        build(Config())
    config = load_config(Config, overrides=["engine.backend=vllm", "engine.vllm.base_url=http://vllm:8000",
                                            "engine.torch.spec_tokens=2", "max_update_bytes=1024"])
    assert (config.engine.backend, config.engine.vllm.base_url, config.engine.torch.spec_tokens,
            config.max_update_bytes) == ("vllm", "http://vllm:8000", 2, 1024)


def test_a_model_that_cannot_be_loaded_keeps_health_not_serving(tmp_path):
    config = Config(engine=EngineSection(torch=TorchEngineConfig(model=str(tmp_path / "missing"))))
    with ServerThread(build(config)) as server:
        with pytest.raises(NotFound, match="no checkpoint directory"):
            server.run(server.server.wait_ready(60), timeout=70)
        assert health_status(server.target) == "NOT_SERVING"
