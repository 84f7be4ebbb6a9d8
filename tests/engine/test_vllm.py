"""VLLMBackend over HTTP against FakeVLLM: generation, finish reasons, aborts, errors, tokens, weight reloads.

FakeVLLM speaks vLLM's documented completions, models, tokenize and dev-mode weight endpoints (see
fake_engine_servers.py)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from r1.engine.http_backend import EngineServerConfig
from r1.engine.types import Backend, FinishReason, GenerationRequest, SampleDelta, SampleOutput, SamplingParams
from r1.engine.vllm import VLLMBackend
from r1.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable
from tests.engine.fake_engine_servers import EOS, FakeVLLM, encode, logprob

PROMPT = (0, 10, 11, 12)


@pytest.fixture
def fake():
    server = FakeVLLM()
    yield server
    server.close()


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """The served checkpoint's directory as the adapter sees it: config files and safetensors headers."""
    directory = tmp_path / "teacher"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({
        "architectures": ["DeepseekV3ForCausalLM"], "vocab_size": 64, "bos_token_id": 0, "eos_token_id": 1,
        "pad_token_id": 2, "num_nextn_predict_layers": 1, "torch_dtype": "bfloat16"}))
    (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": [1]}))
    save_file({"model.norm.weight": torch.ones(4), "lm_head.weight": torch.zeros(64, 4)},
              str(directory / "model.safetensors"))
    return directory


def run(coro):
    return asyncio.run(coro)


def config(fake, **overrides) -> EngineServerConfig:
    return EngineServerConfig(base_url=fake.url, **overrides)


def request(n: int = 1, request_id: str = "r", prompt=PROMPT, logprobs: bool = False, **sampling):
    return GenerationRequest(request_id, tuple(prompt), n=n, sampling=SamplingParams(**sampling),
                             return_logprobs=logprobs)


def check(items: list, n: int) -> tuple[list[SampleDelta], list[SampleOutput]]:
    """The stream's contract: one output per sample, after its deltas, carrying the tokens, logprobs and text
    the deltas carried; (deltas, outputs by index)."""
    deltas, outputs = [], {}
    for item in items:
        assert item.index not in outputs, "an item after the sample's final output"
        if isinstance(item, SampleDelta):
            deltas.append(item)
        else:
            outputs[item.index] = item
    assert sorted(outputs) == list(range(n))
    for index, output in outputs.items():
        mine = [d for d in deltas if d.index == index]
        assert tuple(t for d in mine for t in d.token_ids) == output.token_ids
        assert tuple(v for d in mine for v in d.logprobs) == output.logprobs
        assert "".join(d.text for d in mine) == output.text
    return deltas, [outputs[i] for i in range(n)]


async def collect(backend, req) -> tuple[list[SampleDelta], list[SampleOutput]]:
    return check([item async for item in backend.generate(req)], req.n)


async def started(cfg: EngineServerConfig) -> VLLMBackend:
    backend = VLLMBackend(cfg)
    await backend.start()
    return backend


def generate(cfg: EngineServerConfig, req) -> tuple[list[SampleDelta], list[SampleOutput]]:
    async def go():
        backend = await started(cfg)
        try:
            return await collect(backend, req)
        finally:
            await backend.close()
    return run(go())


def letters(text: str) -> list[int]:
    return encode(text, add_special=False)


# -------------------------------------------------------------------------------------------- start


def test_start_fills_info_from_the_server_and_the_local_model_files(fake, model_dir):
    async def go():
        backend = await started(config(fake, tokenizer=str(model_dir)))
        assert isinstance(backend, Backend)
        info = backend.info
        await backend.close()
        return info

    info = run(go())
    assert (info.backend, info.model_id, info.checkpoint, info.max_context_tokens) == \
        ("vllm", "teacher", "/models/teacher", 128)
    assert (info.vocab_size, info.eos_token_ids, info.bos_token_id, info.pad_token_id) == (64, (1,), 0, 2)
    assert (info.architecture, info.mtp_depth, info.dtype, info.weight_version) == \
        ("DeepseekV3ForCausalLM", 1, "bfloat16", 0)
    assert fake.paths()[:2] == ["/health", "/v1/models"]


def test_a_model_the_server_does_not_serve_is_a_clear_error(fake):
    with pytest.raises(FailedPrecondition, match=r"serves \['teacher'\], not 'student'.*engine\.vllm\.model"):
        run(started(config(fake, model="student")))


def test_an_unreachable_server_is_unavailable_with_the_fix():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unavailable, match=r"unreachable.*vllm serve.*engine\.vllm\.base_url"):
        run(started(EngineServerConfig(base_url=f"http://127.0.0.1:{port}", timeout_s=5)))


def test_the_api_key_is_sent_as_bearer_and_a_wrong_one_is_named(tmp_path):
    server = FakeVLLM(api_key="sesame")
    try:
        run(started(config(server, api_key="sesame")))
        assert server.calls[-1][2]["Authorization"] == "Bearer sesame"
        with pytest.raises(FailedPrecondition, match=r"rejected the API key.*engine\.vllm\.api_key"):
            run(started(config(server, api_key="wrong")))
    finally:
        server.close()


# ----------------------------------------------------------------------------------------- generate


def test_n_samples_stream_interleaved_with_distinct_indices(fake):
    deltas, outputs = generate(config(fake), request(n=3, max_tokens=6))
    [body] = fake.bodies("/v1/completions")
    assert (body["n"], body["prompt"], body["stream"], body["return_token_ids"]) == (3, list(PROMPT), True, True)
    assert body["stream_options"] == {"include_usage": True} and "seed" not in body
    assert [o.index for o in outputs] == [0, 1, 2]
    assert len({o.token_ids for o in outputs}) == 3
    assert [d.index for d in deltas[:3]] == [0, 1, 2]  # chunks of the three choices arrive interleaved
    assert all(o.finish_reason is FinishReason.LENGTH and len(o.token_ids) == 6 for o in outputs)
    assert all(o.prompt_tokens == len(PROMPT) for o in outputs)


def test_sampling_params_are_forwarded_exactly(fake):
    generate(config(fake), request(
        max_tokens=5, temperature=0.6, top_p=0.95, top_k=0, min_p=0.05, stop=("zz",), stop_token_ids=(7,),
        ignore_eos=True, min_tokens=2, repetition_penalty=1.1, presence_penalty=0.5, frequency_penalty=-0.5))
    [body] = fake.bodies("/v1/completions")
    assert body == {
        "model": "teacher", "prompt": list(PROMPT), "n": 1, "max_tokens": 5, "temperature": 0.6, "top_p": 0.95,
        "top_k": -1, "min_p": 0.05, "stop": ["zz"], "stop_token_ids": [7], "ignore_eos": True, "min_tokens": 2,
        "repetition_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": -0.5, "skip_special_tokens": True,
        "include_stop_str_in_output": False, "return_token_ids": True, "stream": True,
        "stream_options": {"include_usage": True}}


def test_greedy_and_a_context_full_completion(fake):
    generate(config(fake), request(max_tokens=500, temperature=0.0, top_k=5))
    [body] = fake.bodies("/v1/completions")
    assert (body["temperature"], body["top_k"]) == (0.0, 5)
    assert body["max_tokens"] == 128 - len(PROMPT)  # capped to the context window: ends as LENGTH


def test_a_seeded_request_is_one_request_per_sample_with_seed_plus_i(fake):
    fake.scripts = {7: letters("aaaa"), 8: letters("bbbb"), 9: letters("cccc")}
    _, outputs = generate(config(fake), request(n=3, seed=7, max_tokens=4))
    bodies = fake.bodies("/v1/completions")
    assert sorted(b["seed"] for b in bodies) == [7, 8, 9] and all(b["n"] == 1 for b in bodies)
    assert [o.text for o in outputs] == ["aaaa", "bbbb", "cccc"]


def test_logprobs_are_the_sampled_tokens_and_as_many_as_tokens(fake):
    _, outputs = generate(config(fake), request(n=2, max_tokens=5, logprobs=True))
    assert fake.bodies("/v1/completions")[0]["logprobs"] == 0
    for output in outputs:
        assert len(output.logprobs) == len(output.token_ids) == 5
        assert output.logprobs == tuple(logprob(k, t) for k, t in enumerate(output.token_ids))


def test_stop_string_eos_stop_token_and_length_finish_reasons(fake):
    fake.scripts = {0: letters("abcxyz"), 1: [5, 6, EOS, 7], 2: letters("defghij"), 3: [5, 40, 6]}
    _, outputs = generate(config(fake), request(n=4, max_tokens=4, stop=("bc",), stop_token_ids=(40,)))
    stop_string, eos, length, stop_id = outputs
    assert (stop_string.finish_reason, stop_string.matched_stop, stop_string.text) == \
        (FinishReason.STOP_STRING, "bc", "a")
    assert stop_string.token_ids == tuple(letters("abc"))  # the tokens that formed it are kept
    assert (eos.finish_reason, eos.token_ids, eos.matched_stop) == (FinishReason.STOP, (5, 6, EOS), "")
    assert (length.finish_reason, length.token_ids) == (FinishReason.LENGTH, tuple(letters("defg")))
    assert (stop_id.finish_reason, stop_id.token_ids) == (FinishReason.STOP, (5, 40))


def test_usage_counts_reach_the_outputs():
    server = FakeVLLM(cached_tokens=3)
    try:
        _, outputs = generate(config(server), request(n=2, max_tokens=3))
    finally:
        server.close()
    assert [(o.prompt_tokens, o.cached_prompt_tokens) for o in outputs] == [(4, 3), (4, 3)]
    assert all((o.weight_version, o.last_weight_version) == (0, 0) for o in outputs)


def test_abort_mid_stream_ends_samples_and_closes_the_connection(fake):
    fake.hold_after = 3

    async def go():
        backend = await started(config(fake))
        items = []
        async for item in backend.generate(request(n=2, max_tokens=20)):
            items.append(item)
            if len(items) == 3:
                assert await backend.abort("r")
        assert not await backend.abort("r")  # no longer in flight
        await backend.close()
        return items

    _, outputs = check(run(go()), 2)
    assert all(o.finish_reason is FinishReason.ABORT for o in outputs)
    assert sum(len(o.token_ids) for o in outputs) == 6  # the three chunks received, two tokens each
    assert fake.disconnected.wait(5)


def test_cancelling_the_iteration_closes_the_connection(fake):
    fake.hold_after = 1

    async def go():
        backend = await started(config(fake))
        stream = backend.generate(request(max_tokens=20))
        assert isinstance(await anext(stream), SampleDelta)
        await stream.aclose()
        await backend.close()

    run(go())
    assert fake.disconnected.wait(5)


def test_a_request_id_in_flight_is_refused(fake):
    fake.hold_after = 1

    async def go():
        backend = await started(config(fake))
        first = backend.generate(request(max_tokens=20))
        await anext(first)
        with pytest.raises(AlreadyExists, match="already in flight"):
            await anext(backend.generate(request(max_tokens=20)))
        await first.aclose()
        await backend.close()

    run(go())


@pytest.mark.parametrize("bad, field", [
    (request(prompt=()), "prompt"), (request(prompt=(0, 64)), r"prompt\.token_ids\[1\]"),
    (request(top_p=0.0), r"sampling\.top_p"), (request(n=0), "n"),
    (request(prompt=range(128)), "prompt")])
def test_bad_requests_are_refused_before_anything_is_sent(fake, model_dir, bad, field):
    async def go():
        backend = await started(config(fake, tokenizer=str(model_dir)))
        with pytest.raises(InvalidArgument, match=field):
            await collect(backend, bad)
        await backend.close()

    run(go())
    assert fake.bodies("/v1/completions") == []


def test_a_400_from_the_server_is_invalid_argument_quoting_it(fake):
    with pytest.raises(InvalidArgument, match=r"refused the request: This model's maximum context length is 128"):
        generate(config(fake, max_context_tokens=1000), request(max_tokens=200))


def test_the_fake_refuses_unknown_and_out_of_range_fields(fake):
    with httpx.Client(base_url=fake.url) as client:
        unknown = client.post("/v1/completions", json={"prompt": [1, 2], "stream": True, "max_token": 3})
        top_p = client.post("/v1/completions", json={"prompt": [1, 2], "stream": True, "top_p": 0})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "max_token"
    assert top_p.status_code == 400 and "top_p must be in (0, 1]" in top_p.json()["error"]["message"]


# ------------------------------------------------------------------------------------------- tokens


def test_tokenize_uses_the_server_without_a_local_tokenizer(fake):
    async def go():
        backend = await started(config(fake))
        ids = backend.tokenize("abc")
        return ids, backend.detokenize(ids)

    assert run(go()) == ([0, 3, 4, 5], "abc")
    assert fake.bodies("/tokenize") == [{"model": "teacher", "prompt": "abc", "add_special_tokens": True}]
    assert fake.bodies("/detokenize") == [{"model": "teacher", "tokens": [0, 3, 4, 5]}]


def test_tokenize_prefers_the_local_tokenizer(fake, tmp_path):
    from r1.model.tokenizer import default_corpus, save_tokenizer, train_tokenizer

    local = train_tokenizer(default_corpus(), vocab_size=300)
    directory = save_tokenizer(local, tmp_path / "tok")

    async def go():
        backend = await started(config(fake, tokenizer=str(directory)))
        ids = backend.tokenize("1 + 2")
        return backend.info, ids, backend.detokenize(ids)

    info, ids, text = run(go())
    assert ids == local.encode("1 + 2") and text == "1 + 2"
    assert (info.vocab_size, info.eos_token_ids) == (len(local), (local.eos_token_id,))
    assert "/tokenize" not in fake.paths() and "/detokenize" not in fake.paths()


# ------------------------------------------------------------------------------------------ weights


def test_update_weights_stages_safetensors_and_reloads_them(fake, model_dir, tmp_path):
    weights = tmp_path / "staged"
    cfg = config(fake, tokenizer=str(model_dir), weight_dir=str(weights))

    async def go():
        backend = await started(cfg)
        count = await backend.update_weights(1, {"model.norm.weight": torch.full((4,), 2.0)})
        info = backend.info
        _, outputs = await collect(backend, request(max_tokens=2))
        await backend.close()
        return count, info, outputs

    count, info, [output] = run(go())
    [staged] = [p for p in weights.iterdir()]
    assert count == 1 and info.weight_version == 1
    assert torch.equal(load_file(str(staged / "model.safetensors"))["model.norm.weight"], torch.full((4,), 2.0))
    assert (staged / "config.json").read_text() == (model_dir / "config.json").read_text()
    assert fake.bodies("/collective_rpc") == [
        {"method": "update_config", "args": [{"model_config": {"model": str(staged)}}]},
        {"method": "reload_weights"}]
    assert fake.reloads == [{"model.norm.weight": [4]}] and "/reset_prefix_cache" in fake.paths()
    assert (output.weight_version, output.last_weight_version) == (1, 1)


def test_update_weights_checks_names_shapes_and_versions_before_anything(fake, model_dir, tmp_path):
    cfg = config(fake, tokenizer=str(model_dir), weight_dir=str(tmp_path / "staged"), weight_version=3)

    async def go():
        backend = await started(cfg)
        with pytest.raises(FailedPrecondition, match="version 3 must be greater than the served 3"):
            await backend.update_weights(3, {"model.norm.weight": torch.ones(4)})
        with pytest.raises(InvalidArgument, match=r"tensors\['model.nrom.weight'\].*not a parameter"):
            await backend.update_weights(4, {"model.nrom.weight": torch.ones(4)})
        with pytest.raises(InvalidArgument, match=r"has shape \[5\]; the served checkpoint's is \[4\]"):
            await backend.update_weights(4, {"model.norm.weight": torch.ones(5)})
        info = backend.info
        await backend.close()
        return info

    assert run(go()).weight_version == 3
    assert fake.bodies("/collective_rpc") == [] and not (tmp_path / "staged").exists()


def test_weight_endpoints_need_dev_mode_and_a_weight_dir(model_dir, tmp_path):
    server = FakeVLLM(dev_mode=False)

    async def go(cfg):
        backend = await started(cfg)
        try:
            await backend.update_weights(1, {"model.norm.weight": torch.ones(4)})
        finally:
            await backend.close()

    try:
        with pytest.raises(FailedPrecondition, match="weight_dir is empty"):
            run(go(config(server)))
        with pytest.raises(FailedPrecondition, match="404.*VLLM_SERVER_DEV_MODE=1"):
            run(go(config(server, weight_dir=str(tmp_path / "w"))))
    finally:
        server.close()


def test_load_checkpoint_points_the_workers_at_it(fake, model_dir):
    async def go():
        backend = await started(config(fake))
        info = await backend.load_checkpoint(str(model_dir), 5)
        await backend.close()
        return info

    info = run(go())
    assert (info.checkpoint, info.weight_version) == (str(model_dir), 5)
    assert fake.bodies("/collective_rpc")[0]["args"] == [{"model_config": {"model": str(model_dir)}}]
    assert fake.reloads == [{"model.norm.weight": [4], "lm_head.weight": [64, 4]}]
