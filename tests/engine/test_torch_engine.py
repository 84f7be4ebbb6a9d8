"""The torch engine: continuous batching gives each sample what it would get alone, sampling is per sample and
seeded, MTP speculation is exact for greedy decoding, stops and limits end samples as documented, aborts and
weight updates behave, and bad requests are refused with the field named."""

from __future__ import annotations

import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM

from r1.engine.types import FinishReason, GenerationRequest, SamplingParams
from r1.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from r1.model.checkpoint import load_pretrained
from r1.model.decode import generate as reference_generate
from tests.engine.conftest import PATTERN, request

PROMPTS = [[0, 17, 99, 250, 31, 8, 77], [0, 5], [0, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131]]


def greedy(engine, prompts, max_tokens=16, n=1, **sampling):
    requests = [request(p, f"g{i}", n=n, temperature=0, max_tokens=max_tokens, ignore_eos=True, **sampling)
                for i, p in enumerate(prompts)]
    return engine.collect(*requests)


def test_a_ragged_batch_decodes_each_prompt_as_the_reference_decoder_does(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))
    model = load_pretrained(teacher_dir)
    results = greedy(engine, PROMPTS, max_tokens=16, n=2)
    for prompt, outputs in zip(PROMPTS, results):
        expected = reference_generate(model, [prompt], 16, eos_id=-1, pad_id=2)[0]
        assert [list(o.token_ids) for o in outputs] == [expected, expected]
        assert all(o.finish_reason is FinishReason.LENGTH and o.prompt_tokens == len(prompt) for o in outputs)


def test_requests_join_and_leave_the_running_batch(make_engine, teacher_dir):
    """Four slots, six requests of different lengths: later requests are admitted as earlier samples finish,
    and every output is still the one it gets alone."""
    engine = make_engine(model=str(teacher_dir), max_num_seqs=4)
    lengths = [3, 12, 5, 9, 2, 7]
    requests = [request(PROMPTS[i % 3], f"j{i}", temperature=0, max_tokens=m, ignore_eos=True)
                for i, m in enumerate(lengths)]
    together = engine.collect(*requests)
    alone = [engine.collect(r)[0] for r in requests]
    assert [o[0].token_ids for o in together] == [o[0].token_ids for o in alone]
    assert [len(o[0].token_ids) for o in together] == lengths
    assert engine.engine.stats() == {"running": 0, "waiting": 0, "cache_bytes": 0}


def test_logprobs_are_the_raw_model_log_probabilities(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))
    model = load_pretrained(teacher_dir)
    prompt = PROMPTS[0]
    [[output]] = engine.collect(request(prompt, temperature=0.8, top_p=0.9, max_tokens=6, seed=1, ignore_eos=True))
    ids = torch.tensor([prompt + list(output.token_ids)])
    with torch.no_grad():
        logprobs = model(ids).logits[0].log_softmax(-1)
    expected = [float(logprobs[len(prompt) - 1 + i, t]) for i, t in enumerate(output.token_ids)]
    assert output.logprobs == pytest.approx(expected, abs=1e-4)


def test_seeded_samples_reproduce_and_differ_by_index(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))
    sampled = dict(temperature=1.0, max_tokens=12, seed=7, ignore_eos=True)
    [first] = engine.collect(request(PROMPTS[0], "a", n=4, **sampled))
    [again, other] = engine.collect(request(PROMPTS[0], "b", n=4, **sampled),
                                    request(PROMPTS[1], "c", n=2, **sampled))
    assert [o.token_ids for o in first] == [o.token_ids for o in again]  # batch company does not matter
    assert len({o.token_ids for o in first}) > 1  # sample i draws with seed + i
    [shifted] = engine.collect(request(PROMPTS[0], "d", n=1, **{**sampled, "seed": 8}))
    assert shifted[0].token_ids == first[1].token_ids


def test_top_k_1_and_min_p_1_are_greedy(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))
    [[plain]] = greedy(engine, [PROMPTS[0]], max_tokens=10)
    for knob in ({"top_k": 1}, {"min_p": 1.0}, {"top_p": 1e-6}):
        [[output]] = engine.collect(request(PROMPTS[0], temperature=1.5, max_tokens=10, ignore_eos=True, seed=3,
                                            **knob))
        assert output.token_ids == plain.token_ids, knob


@pytest.mark.parametrize("spec_tokens", [1, 2, 3])
def test_mtp_speculation_is_token_for_token_plain_greedy(make_engine, patterned_teacher_dir, spec_tokens):
    plain = make_engine(model=str(patterned_teacher_dir))
    fast = make_engine(model=str(patterned_teacher_dir), spec_tokens=spec_tokens)
    prompts = [PATTERN[:3], PATTERN[2:] + PATTERN, PROMPTS[0], PROMPTS[2]]
    expected = greedy(plain, prompts, max_tokens=24, n=2)
    got = greedy(fast, prompts, max_tokens=24, n=2)
    assert [[o.token_ids for o in r] for r in got] == [[o.token_ids for o in r] for r in expected]
    drafted = sum(o.spec_draft_tokens for r in got for o in r)
    accepted = sum(o.spec_accepted_tokens for r in got for o in r)
    assert drafted > 0 and 0 < accepted <= drafted
    pattern_outputs = got[0] + got[1]
    assert sum(o.spec_accepted_tokens for o in pattern_outputs) / sum(o.spec_draft_tokens for o in pattern_outputs) > 0.5
    for r, e in zip(got, expected):  # logprobs come from the verify pass: the same values
        assert r[0].logprobs == pytest.approx(e[0].logprobs, abs=1e-4)


def test_speculation_pauses_while_the_batch_is_large_and_stays_exact(make_engine, patterned_teacher_dir):
    plain = make_engine(model=str(patterned_teacher_dir))
    switching = make_engine(model=str(patterned_teacher_dir), spec_tokens=2, spec_max_batch=2)
    prompts = [PATTERN[:3], PATTERN[2:] + PATTERN, PROMPTS[0], PROMPTS[2]]
    requests = [request(p, f"r{i}", temperature=0, max_tokens=6 + 8 * i, ignore_eos=True)
                for i, p in enumerate(prompts)]
    expected, got = plain.collect(*requests), switching.collect(*requests)
    assert [[o.token_ids for o in r] for r in got] == [[o.token_ids for o in r] for r in expected]
    drafted = [r[0].spec_draft_tokens for r in got]
    assert drafted[0] == 0  # it ran only in steps of 3-4 samples: plain steps
    assert drafted[3] > 0  # the longest ran on alone (and with one other) after the short ones ended
    assert got[3][0].spec_accepted_tokens > 0


def test_a_negative_spec_max_batch_is_refused(make_engine, patterned_teacher_dir):
    with pytest.raises(InvalidArgument, match="spec_max_batch"):
        make_engine(model=str(patterned_teacher_dir), spec_tokens=1, spec_max_batch=-1)


def test_speculative_sampling_is_seeded_and_ends_samples_like_plain_decoding(make_engine, patterned_teacher_dir):
    engine = make_engine(model=str(patterned_teacher_dir), spec_tokens=2)
    sampled = request(PATTERN[:4], "s", n=3, temperature=0.7, max_tokens=15, seed=11, ignore_eos=True)
    [first] = engine.collect(sampled)
    [again] = engine.collect(GenerationRequest("t", sampled.prompt_ids, 3, sampled.sampling, True))
    assert [o.token_ids for o in first] == [o.token_ids for o in again]
    assert all(len(o.token_ids) == 15 and len(o.logprobs) == 15 for o in first)
    assert all(o.spec_accepted_tokens > 0 for o in first)


def test_stop_token_ids_eos_min_tokens_and_max_tokens(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))
    [[plain]] = greedy(engine, [PROMPTS[0]], max_tokens=12)
    stop_at = plain.token_ids[4]
    first = plain.token_ids.index(stop_at)
    [[stopped]] = engine.collect(request(PROMPTS[0], temperature=0, max_tokens=12, stop_token_ids=(stop_at,)))
    assert stopped.finish_reason is FinishReason.STOP and stopped.token_ids == plain.token_ids[:first + 1]
    [[late]] = engine.collect(request(PROMPTS[0], temperature=0, max_tokens=12, stop_token_ids=(stop_at,),
                                      min_tokens=first + 2))
    assert stop_at not in late.token_ids[:first + 2]
    [[short]] = engine.collect(request(PROMPTS[0], temperature=0, max_tokens=3, ignore_eos=True))
    assert short.finish_reason is FinishReason.LENGTH and short.token_ids == plain.token_ids[:3]


def test_stop_strings_cut_the_text_and_never_stream_it(make_engine, teacher_dir, tokenizer):
    engine = make_engine(model=str(teacher_dir))
    [[plain]] = engine.collect(request(PROMPTS[0], temperature=0, max_tokens=20, ignore_eos=True))
    text = plain.text
    assert len(text) > 6
    stop = text[3:6]
    [[stopped]] = engine.collect(request(PROMPTS[0], temperature=0, max_tokens=20, ignore_eos=True, stop=(stop,)))
    assert stopped.finish_reason is FinishReason.STOP_STRING and stopped.matched_stop == stop
    assert stopped.text == text[:text.index(stop)]  # the conftest checks that the deltas add up to it


def test_the_context_window_ends_a_sample(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir), max_context_tokens=16)
    [[output]] = engine.collect(request(PROMPTS[2], temperature=0, max_tokens=100, ignore_eos=True))
    assert output.finish_reason is FinishReason.LENGTH and len(PROMPTS[2]) + len(output.token_ids) == 16


def test_abort_ends_the_samples_and_frees_their_slots(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir), max_num_seqs=4)
    eng = engine.engine

    async def scenario():
        long = request(PROMPTS[0], "long", n=4, temperature=0, max_tokens=100_000 // 1000, ignore_eos=True)
        stream = eng.generate(long)
        first = await stream.__anext__()  # admitted and decoding
        assert await eng.abort("long") and not await eng.abort("nobody")
        items = [first] + [item async for item in stream]
        finals = [i for i in items if hasattr(i, "finish_reason")]
        return finals

    finals = engine.run(scenario())
    assert sorted(o.index for o in finals) == [0, 1, 2, 3]
    assert all(o.finish_reason is FinishReason.ABORT and len(o.token_ids) < 100 for o in finals)
    assert eng.stats()["running"] == 0 and eng.loaded.runner.free_slots == 4
    [[after]] = engine.collect(request(PROMPTS[1], "after", temperature=0, max_tokens=4, ignore_eos=True))
    assert len(after.token_ids) == 4


def test_cancelling_the_stream_aborts_the_request(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir), max_num_seqs=2)
    eng = engine.engine

    async def scenario():
        async def consume():
            async for _ in eng.generate(request(PROMPTS[0], "c", n=2, temperature=0, max_tokens=500,
                                                ignore_eos=True)):
                await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if eng.loaded.runner.free_slots == 2:
                return True
            await asyncio.sleep(0.02)
        return False

    assert engine.run(scenario())


def test_bad_requests_name_the_field_and_the_engine_keeps_serving(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir), max_context_tokens=64)
    vocab = engine.engine.info.vocab_size
    cases = {
        "prompt": request([]),
        "prompt.token_ids[1]": request([0, vocab + 5]),
        "n": request([0, 5], n=0),
        "sampling.temperature": request([0, 5], temperature=-1),
        "sampling.top_p": request([0, 5], top_p=0),
        "sampling.min_p": request([0, 5], min_p=1.5),
        "sampling.max_tokens": request([0, 5], max_tokens=0),
    }
    cases["prompt "] = request(list(range(3, 70)))  # longer than the context
    cases["n "] = request([0, 5], n=5000)
    for field, bad in cases.items():
        with pytest.raises(InvalidArgument) as caught:
            engine.collect(bad)
        assert caught.value.field == field.strip(), (field, caught.value)
    [[fine]] = engine.collect(request([0, 5], temperature=0, max_tokens=3, ignore_eos=True))
    assert len(fine.token_ids) == 3


def test_a_request_id_in_flight_cannot_be_reused(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir))

    async def scenario():
        stream = engine.engine.generate(request(PROMPTS[0], "dup", temperature=0, max_tokens=50, ignore_eos=True))
        await stream.__anext__()
        with pytest.raises(AlreadyExists):
            await engine.engine.generate(request(PROMPTS[1], "dup")).__anext__()
        await stream.aclose()

    engine.run(scenario())


def test_weight_updates_apply_between_steps_and_bad_ones_change_nothing(make_engine, teacher_dir, tokenizer):
    from tests.engine.conftest import teacher

    engine = make_engine(model=str(teacher_dir))
    eng = engine.engine
    [[before]] = greedy(engine, [PROMPTS[0]], max_tokens=8)
    other = teacher(tokenizer, seed=5)
    from r1.model.checkpoint import to_checkpoint_names

    update = to_checkpoint_names(other.state_dict(), other.config)
    served = {name: tensor.clone() for name, tensor in eng.loaded.parameters.items()}
    name = "model.layers.0.self_attn.kv_b_proj.weight"
    for bad, why in [({name: update[name][:1]}, "shape"), ({name: update[name].to(torch.int32)}, "dtype"),
                     ({"model.layers.0.self_attn.nope.weight": update[name]}, "not a parameter"),
                     ({**update, name: torch.full_like(update[name], float("nan"))}, "NaN")]:
        with pytest.raises(InvalidArgument, match=why):
            engine.run(eng.update_weights(1, bad))
    assert all(torch.equal(served[n], t) for n, t in eng.loaded.parameters.items())  # nothing applied
    assert engine.run(eng.update_weights(3, update)) == len(update)
    assert eng.info.weight_version == 3
    with pytest.raises(FailedPrecondition, match="greater"):
        engine.run(eng.update_weights(3, update))
    [[after]] = greedy(engine, [PROMPTS[0]], max_tokens=8)
    expected = reference_generate(other, [PROMPTS[0]], 8, eos_id=-1, pad_id=2)[0]
    assert list(after.token_ids) == expected and after.token_ids != before.token_ids
    assert after.weight_version == after.last_weight_version == 3


def test_transformers_students_decode_like_their_own_generate(make_engine, student_dir):
    engine = make_engine(model=str(student_dir))
    info = engine.engine.info
    assert info.architecture == "Qwen2ForCausalLM" and info.mtp_depth == 0
    theirs = AutoModelForCausalLM.from_pretrained(str(student_dir), dtype=torch.float32).eval()
    results = greedy(engine, PROMPTS, max_tokens=10, n=2)
    for prompt, outputs in zip(PROMPTS, results):
        with torch.no_grad():
            expected = theirs.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False,
                                       eos_token_id=None, pad_token_id=2)[0, len(prompt):].tolist()
        assert [list(o.token_ids) for o in outputs] == [expected, expected]


def test_students_join_and_leave_the_running_batch_with_seeded_samples_and_raw_logprobs(make_engine, student_dir):
    """Four slots, five sampled requests of different lengths: finished samples free their rows to later
    requests, and every sample is still the one it draws alone, with the model's own log-probabilities."""
    engine = make_engine(model=str(student_dir), max_num_seqs=4)
    lengths = [3, 12, 5, 9, 7]
    requests = [request(PROMPTS[i % 3], f"s{i}", n=1 + i % 2, temperature=1.0, max_tokens=m, seed=i,
                        ignore_eos=True) for i, m in enumerate(lengths)]
    together = engine.collect(*requests)
    alone = [engine.collect(r)[0] for r in requests]
    assert [[o.token_ids for o in outputs] for outputs in together] == [[o.token_ids for o in a] for a in alone]
    assert [[len(o.token_ids) for o in outputs] for outputs in together] == [[m] * (1 + i % 2)
                                                                            for i, m in enumerate(lengths)]
    assert engine.engine.stats() == {"running": 0, "waiting": 0, "cache_bytes": 0}
    model = AutoModelForCausalLM.from_pretrained(str(student_dir), dtype=torch.float32).eval()
    for r, outputs in zip(requests, together):
        for output in outputs:
            ids = torch.tensor([list(r.prompt_ids) + list(output.token_ids)])
            with torch.no_grad():
                logprobs = model(ids).logits[0].log_softmax(-1)
            expected = [float(logprobs[len(r.prompt_ids) - 1 + i, t]) for i, t in enumerate(output.token_ids)]
            assert output.logprobs == pytest.approx(expected, abs=1e-4)


def test_sampling_params_defaults_match_the_proto():
    params = SamplingParams()
    assert (params.temperature, params.top_p, params.top_k, params.min_p, params.max_tokens) == (1.0, 1.0, 0, 0.0, 256)


@pytest.mark.timeout(60)  # the bug this guards against hangs the engine thread
def test_an_update_cancelled_by_its_caller_leaves_the_engine_serving(make_engine, teacher_dir, tokenizer):
    from r1.model.checkpoint import to_checkpoint_names
    from tests.engine.conftest import teacher

    engine = make_engine(model=str(teacher_dir))
    eng = engine.engine
    other = teacher(tokenizer, seed=6)
    update = to_checkpoint_names(other.state_dict(), other.config)

    async def cancel_after(delay: float):
        task = asyncio.create_task(eng.update_weights(eng.info.weight_version + 1, update))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    for delay in (0, 0.001, 0.01, 0.05):
        engine.run(cancel_after(delay))
        [[output]] = greedy(engine, [PROMPTS[1]], max_tokens=3)
        assert len(output.token_ids) == 3


def test_a_failing_step_ends_its_requests_and_the_engine_keeps_serving(make_engine, teacher_dir):
    engine = make_engine(model=str(teacher_dir), max_num_seqs=4)
    runner = engine.engine.loaded.runner
    prefill = runner.prefill

    def broken(prompt, slots):
        runner.prefill = prefill  # fails once
        raise RuntimeError("injected")

    runner.prefill = broken
    [outputs] = engine.collect(request(PROMPTS[0], "fails", n=3, temperature=0, max_tokens=5))
    assert [o.finish_reason for o in outputs] == [FinishReason.ABORT] * 3 and runner.free_slots == 4
    [[fine]] = engine.collect(request(PROMPTS[0], "after", temperature=0, max_tokens=5, ignore_eos=True))
    assert len(fine.token_ids) == 5
