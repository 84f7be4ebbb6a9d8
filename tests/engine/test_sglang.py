"""SGLangBackend over HTTP against FakeSGLang: batches, finish reasons, aborts, errors, tokens, weight updates.

FakeSGLang speaks SGLang's documented native API (/generate, /abort_request, /get_model_info,
/get_server_info, /tokenize, /update_weights_from_disk; see fake_engine_servers.py)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import save_file

from r1.engine.http_backend import EngineServerConfig
from r1.engine.sglang import SGLangBackend
from r1.engine.types import Backend, FinishReason, GenerationRequest, SampleDelta, SampleOutput, SamplingParams
from r1.errors import FailedPrecondition, InvalidArgument, Unavailable
from tests.engine.fake_engine_servers import EOS, FakeSGLang, encode, logprob

PROMPT = (0, 10, 11, 12)


@pytest.fixture
def fake():
    server = FakeSGLang()
    yield server
    server.close()


@pytest.fixture
def model_dir(tmp_path) -> Path:
    directory = tmp_path / "teacher"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({
        "architectures": ["DeepseekV3ForCausalLM"], "vocab_size": 64, "eos_token_id": 1, "bos_token_id": 0,
        "num_nextn_predict_layers": 1}))
    save_file({"model.norm.weight": torch.ones(4)}, str(directory / "model.safetensors"))
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


async def started(cfg: EngineServerConfig) -> SGLangBackend:
    backend = SGLangBackend(cfg)
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


def test_start_fills_info_from_model_and_server_info(model_dir):
    server = FakeSGLang(speculative=True)

    async def go():
        backend = await started(config(server, tokenizer=str(model_dir)))
        assert isinstance(backend, Backend)
        info = backend.info
        await backend.close()
        return info

    try:
        info = run(go())
    finally:
        server.close()
    assert (info.backend, info.model_id, info.checkpoint, info.max_context_tokens) == \
        ("sglang", "teacher", "/models/teacher", 128)
    assert (info.vocab_size, info.eos_token_ids, info.mtp_depth, info.spec_tokens) == (64, (1,), 1, 1)
    assert server.paths() == ["/health", "/get_model_info", "/get_server_info"]


def test_an_unreachable_server_is_unavailable_with_the_fix():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unavailable, match=r"unreachable.*sglang\.launch_server.*engine\.sglang\.base_url"):
        run(started(EngineServerConfig(base_url=f"http://127.0.0.1:{port}", timeout_s=5)))


# ----------------------------------------------------------------------------------------- generate


def test_n_samples_go_as_one_batch_with_a_rid_each(fake):
    deltas, outputs = generate(config(fake), request(n=3, request_id="q", max_tokens=6))
    [body] = fake.bodies("/generate")
    assert body["rid"] == ["q-0", "q-1", "q-2"]
    assert body["input_ids"] == [list(PROMPT)] * 3 and len(body["sampling_params"]) == 3
    assert (body["stream"], body["return_logprob"]) == (True, False)
    assert [o.index for o in outputs] == [0, 1, 2] and len({o.token_ids for o in outputs}) == 3
    assert [d.index for d in deltas[:3]] == [0, 1, 2]  # the samples' chunks arrive interleaved
    assert all(o.finish_reason is FinishReason.LENGTH and len(o.token_ids) == 6 for o in outputs)


def test_sampling_params_are_forwarded_exactly_with_a_seed_per_sample(fake):
    generate(config(fake), request(
        n=2, max_tokens=5, temperature=0.6, top_p=0.95, top_k=0, min_p=0.05, seed=11, stop=("zz",),
        stop_token_ids=(7,), ignore_eos=True, min_tokens=2, repetition_penalty=1.1, presence_penalty=0.5,
        frequency_penalty=-0.5))
    [body] = fake.bodies("/generate")
    common = {"max_new_tokens": 5, "temperature": 0.6, "top_p": 0.95, "top_k": -1, "min_p": 0.05, "stop": ["zz"],
              "stop_token_ids": [7], "ignore_eos": True, "min_new_tokens": 2, "repetition_penalty": 1.1,
              "presence_penalty": 0.5, "frequency_penalty": -0.5, "skip_special_tokens": True,
              "no_stop_trim": False}
    assert body["sampling_params"] == [{**common, "sampling_seed": 11}, {**common, "sampling_seed": 12}]


def test_greedy_params_and_the_context_cap(fake):
    generate(config(fake), request(max_tokens=500, temperature=0.0))
    [params] = fake.bodies("/generate")[0]["sampling_params"]
    assert (params["temperature"], params["max_new_tokens"]) == (0.0, 128 - len(PROMPT))
    assert "sampling_seed" not in params


def test_logprobs_are_as_many_as_tokens(fake):
    _, outputs = generate(config(fake), request(n=2, max_tokens=5, logprobs=True))
    assert fake.bodies("/generate")[0]["return_logprob"] is True
    for output in outputs:
        assert len(output.logprobs) == len(output.token_ids) == 5
        assert output.logprobs == tuple(logprob(k, t) for k, t in enumerate(output.token_ids))


def test_stop_string_eos_stop_token_and_length_finish_reasons(fake):
    fake.scripts = {0: letters("abcxyz"), 1: [5, 6, EOS, 7], 2: letters("defghij"), 3: [5, 40, 6]}
    _, outputs = generate(config(fake), request(n=4, max_tokens=4, stop=("bc",), stop_token_ids=(40,)))
    stop_string, eos, length, stop_id = outputs
    # SGLang streams the text untrimmed and cuts the stop string at the end: the held-back text is never given
    assert (stop_string.finish_reason, stop_string.matched_stop, stop_string.text) == \
        (FinishReason.STOP_STRING, "bc", "a")
    assert stop_string.token_ids == tuple(letters("abc"))
    assert (eos.finish_reason, eos.token_ids) == (FinishReason.STOP, (5, 6, EOS))
    assert (length.finish_reason, length.token_ids) == (FinishReason.LENGTH, tuple(letters("defg")))
    assert (stop_id.finish_reason, stop_id.token_ids) == (FinishReason.STOP, (5, 40))


def test_counts_and_speculative_acceptance_reach_the_outputs():
    server = FakeSGLang(speculative=True, cached_tokens=3)
    try:
        _, [output] = generate(config(server), request(max_tokens=6))
    finally:
        server.close()
    assert (output.prompt_tokens, output.cached_prompt_tokens) == (4, 3)
    assert (output.spec_draft_tokens, output.spec_accepted_tokens) == (3, 3)


def test_abort_posts_abort_request_for_the_running_samples(fake):
    fake.scripts = {0: [5, EOS]}  # sample 0 finishes in its first chunk, sample 1 keeps going
    fake.hold_after = 3

    async def go():
        backend = await started(config(fake))
        items, deltas = [], 0
        async for item in backend.generate(request(n=2, request_id="job", max_tokens=20, stop=("zz",))):
            items.append(item)
            deltas += isinstance(item, SampleDelta)
            if deltas == 3 and isinstance(item, SampleDelta):
                assert await backend.abort("job")
        assert not await backend.abort("job")
        await backend.close()
        return items

    _, (done, aborted) = check(run(go()), 2)
    assert fake.bodies("/abort_request") == [{"rid": "job-1"}]
    assert (done.finish_reason, done.token_ids) == (FinishReason.STOP, (5, EOS))
    assert aborted.finish_reason is FinishReason.ABORT and len(aborted.token_ids) == 4
    assert len(aborted.text) == 4  # the character held back for a possible "zz" is released at the abort


def test_the_fake_refuses_unknown_and_out_of_range_fields(fake):
    with httpx.Client(base_url=fake.url) as client:
        unknown = client.post("/generate", json={"input_ids": [1, 2], "stream": True,
                                                 "sampling_params": {"max_tokens": 3}})
        top_k = client.post("/generate", json={"input_ids": [1, 2], "stream": True, "sampling_params": {"top_k": 0}})
        extra = client.post("/generate", json={"input_ids": [1, 2], "stream": True, "prompt": "x"})
    messages = [answer.json()["error"]["message"] for answer in (unknown, top_k, extra)]
    assert [answer.status_code for answer in (unknown, top_k, extra)] == [400, 400, 400]
    assert "unexpected keyword argument 'max_tokens'" in messages[0]
    assert "top_k must be -1 (disable) or at least 1" in messages[1] and "['prompt']" in messages[2]


def test_repetition_penalty_beyond_sglang_range_is_refused_before_sending(fake):
    with pytest.raises(InvalidArgument, match=r"sampling\.repetition_penalty.*\(0, 2\]"):
        generate(config(fake), request(repetition_penalty=2.5))
    with pytest.raises(InvalidArgument, match=r"sampling\.top_p"):
        generate(config(fake), request(top_p=1.5))
    assert fake.bodies("/generate") == []


def test_a_400_from_the_server_is_invalid_argument_quoting_it(fake):
    with pytest.raises(InvalidArgument, match="refused the request: Requested token count exceeds"):
        generate(config(fake, max_context_tokens=1000), request(max_tokens=200))


def test_tokenize_and_detokenize_use_the_server_without_a_local_tokenizer(fake):
    async def go():
        backend = await started(config(fake))
        ids = backend.tokenize("abc", add_special_tokens=False)
        return ids, backend.detokenize([0] + ids, skip_special_tokens=False)

    assert run(go()) == ([3, 4, 5], "<0>abc")
    assert fake.bodies("/tokenize") == [{"prompt": "abc", "add_special_tokens": False}]
    assert fake.bodies("/detokenize") == [{"tokens": [0, 3, 4, 5], "skip_special_tokens": False}]


# ------------------------------------------------------------------------------------------ weights


def test_update_weights_from_disk_with_the_version(fake, model_dir, tmp_path):
    weights = tmp_path / "staged"

    async def go():
        backend = await started(config(fake, tokenizer=str(model_dir), weight_dir=str(weights)))
        count = await backend.update_weights(1, {"model.norm.weight": torch.zeros(4)})
        info = backend.info
        _, outputs = await collect(backend, request(max_tokens=2))
        with pytest.raises(FailedPrecondition, match="version 1 must be greater than the served 1"):
            await backend.update_weights(1, {"model.norm.weight": torch.zeros(4)})
        await backend.close()
        return count, info, outputs

    count, info, [output] = run(go())
    [staged] = list(weights.iterdir())
    assert count == 1 and info.weight_version == 1
    assert fake.bodies("/update_weights_from_disk") == [{"model_path": str(staged), "weight_version": "1"}]
    assert fake.reloads == [{"model.norm.weight": [4]}]
    assert (output.weight_version, output.last_weight_version) == (1, 1)  # from meta_info.weight_version


def test_a_staged_directory_the_server_cannot_see_is_a_precondition(fake, model_dir, tmp_path):
    cfg = config(fake, tokenizer=str(model_dir), weight_dir=str(tmp_path / "w"), server_weight_dir="/elsewhere")

    async def go():
        backend = await started(cfg)
        try:
            await backend.update_weights(1, {"model.norm.weight": torch.zeros(4)})
        finally:
            await backend.close()

    with pytest.raises(FailedPrecondition, match=r"no safetensors files found in /elsewhere/v0+1.*server_weight_dir"):
        run(go())


def test_load_checkpoint_refuses_a_revision_and_loads_a_directory(fake, model_dir):
    async def go():
        backend = await started(config(fake))
        with pytest.raises(InvalidArgument, match="revision"):
            await backend.load_checkpoint(str(model_dir), 2, revision="main")
        info = await backend.load_checkpoint(str(model_dir), 2)
        await backend.close()
        return info

    info = run(go())
    assert (info.checkpoint, info.weight_version) == (str(model_dir), 2)
    assert fake.bodies("/update_weights_from_disk") == [{"model_path": str(model_dir), "weight_version": "2"}]
