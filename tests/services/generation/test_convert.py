"""The wire and the library agree: requests, outputs and model info survive library -> proto -> library, unset
optional fields take the documented defaults, explicit zeros are kept, and every enum maps both ways."""

from __future__ import annotations

import pytest
import torch

from r1.engine.types import FinishReason, ModelInfo, SampleDelta, SampleOutput, SamplingParams
from r1.errors import InvalidArgument
from services.generation import convert
from services.protogen.generation.v1 import generation_pb2 as pb

SAMPLINGS = [
    SamplingParams(),
    SamplingParams(temperature=0, top_k=0, min_p=0, ignore_eos=True, seed=0),
    SamplingParams(temperature=0.5, top_p=0.75, top_k=40, min_p=0.125, max_tokens=1024, seed=2 ** 62,
                   stop=("</answer>", "\n\n"), stop_token_ids=(1, 7), min_tokens=3, repetition_penalty=1.25,
                   presence_penalty=-0.5, frequency_penalty=2.0),
]


def wire(message):
    return type(message).FromString(message.SerializeToString())


def fake_tokenize(text: str, add_special_tokens: bool) -> list[int]:
    return ([0] if add_special_tokens else []) + [ord(c) % 400 for c in text]


def test_unset_sampling_fields_take_the_proto_defaults_which_are_the_library_defaults():
    assert convert.sampling_from_proto(pb.SamplingParams()) == SamplingParams()
    request = convert.request_from_proto(pb.GenerateRequest(text="ab"), fake_tokenize)
    assert (request.n, request.sampling, request.return_logprobs, request.skip_special_tokens) == \
        (1, SamplingParams(), False, True)
    assert request.prompt_ids == (0, 97, 98)  # add_special_tokens defaults to true
    assert request.sampling.seed is None


def test_explicit_proto3_zeros_mean_zero_not_the_default():
    message = pb.SamplingParams(temperature=0, top_p=1, repetition_penalty=1, max_tokens=1)
    assert message.HasField("temperature")
    params = convert.sampling_from_proto(message)
    assert params.temperature == 0 and params.greedy and params.max_tokens == 1
    request = convert.request_from_proto(pb.GenerateRequest(text="ab", n=0, skip_special_tokens=False,
                                                            add_special_tokens=False), fake_tokenize)
    assert (request.n, request.skip_special_tokens, request.prompt_ids) == (0, False, (97, 98))


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=range(len(SAMPLINGS)))
def test_requests_cross_the_wire_unchanged(sampling):
    message = wire(convert.request_to_proto((0, 5, 9), request_id="r-1", n=4, sampling=sampling,
                                            return_logprobs=True, skip_special_tokens=False))
    request = convert.request_from_proto(message, fake_tokenize)
    assert (request.request_id, request.prompt_ids, request.n, request.return_logprobs,
            request.skip_special_tokens) == ("r-1", (0, 5, 9), 4, True, False)
    assert request.sampling == sampling


def test_token_ids_are_used_verbatim_and_text_is_tokenized_as_asked():
    ids = convert.request_from_proto(convert.request_to_proto([3, 2, 1]), fake_tokenize)
    assert ids.prompt_ids == (3, 2, 1)  # no BOS added to token ids
    text = convert.request_from_proto(convert.request_to_proto("hi", add_special_tokens=False), fake_tokenize)
    assert text.prompt_ids == (104, 105)


@pytest.mark.parametrize("message, field", [(pb.GenerateRequest(), "prompt"),
                                            (pb.GenerateRequest(text=""), "prompt.text")])
def test_a_missing_or_empty_prompt_names_the_field(message, field):
    with pytest.raises(InvalidArgument) as raised:
        convert.request_from_proto(message, fake_tokenize)
    assert raised.value.field == field


def test_outputs_and_deltas_cross_the_wire_unchanged():
    output = SampleOutput(index=2, finish_reason=FinishReason.STOP_STRING, token_ids=(5, 6, 7), text="ab",
                          matched_stop="c", logprobs=(-0.5, -1.25, -2.0), prompt_tokens=9, cached_prompt_tokens=4,
                          spec_draft_tokens=6, spec_accepted_tokens=5, weight_version=3, last_weight_version=4)
    assert convert.response_from_proto(wire(convert.output_to_proto(output))) == output
    delta = SampleDelta(1, (4, 5), (-0.25, -0.5), "xy")
    assert convert.response_from_proto(wire(convert.delta_to_proto(delta))) == delta
    held_back = wire(convert.delta_to_proto(SampleDelta(0, (4,))))
    assert not held_back.chunk.HasField("text")  # unset, not "", while text is held back
    assert convert.response_from_proto(held_back) == SampleDelta(0, (4,))


def test_every_finish_reason_maps_both_ways():
    assert set(convert.FINISH_REASONS) == set(FinishReason)
    wire_values = set(pb.FinishReason.values()) - {pb.FINISH_REASON_UNSPECIFIED}
    assert set(convert.FINISH_REASONS.values()) == wire_values
    for reason, value in convert.FINISH_REASONS.items():
        assert convert.FINISH_REASONS_BY_WIRE[value] is reason
    with pytest.raises(InvalidArgument, match="finish_reason"):
        convert.output_from_proto(pb.SampleResult(finish_reason=pb.FINISH_REASON_UNSPECIFIED))


@pytest.mark.parametrize("info", [
    ModelInfo("m", "DeepseekV3ForCausalLM", "torch", 7, (1, 2), 0, None, 4096, 400, 1, 1, "bfloat16", "/ckpt", 10),
    ModelInfo("q", "Qwen2ForCausalLM", "vllm", 0, (151643,), None, 5, 32768, 151936),
])
def test_model_info_crosses_the_wire_unchanged_and_unset_specials_stay_unset(info):
    message = wire(convert.model_info_to_proto(info))
    assert message.HasField("bos_token_id") == (info.bos_token_id is not None)
    assert convert.model_info_from_proto(message) == info


def test_every_dtype_maps_both_ways_and_unspecified_is_refused():
    assert set(convert.DTYPES) == set(pb.DType.values()) - {pb.DTYPE_UNSPECIFIED}
    assert convert.DTYPES[pb.DTYPE_FLOAT8_E4M3FN] is torch.float8_e4m3fn and convert.DTYPES[pb.DTYPE_BOOL] is torch.bool
    for value, dtype in convert.DTYPES.items():
        assert convert.dtype_to_proto(dtype, "t") == value and convert.dtype_from_proto(value, "dtype") is dtype
    with pytest.raises(InvalidArgument, match="dtype: is DTYPE_UNSPECIFIED; set one of: DTYPE_FLOAT32"):
        convert.dtype_from_proto(pb.DTYPE_UNSPECIFIED, "dtype")
    with pytest.raises(InvalidArgument, match="complex64 has no wire value"):
        convert.dtype_to_proto(torch.complex64, "tensors[w]")
