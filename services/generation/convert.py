"""Between the wire (`r1.generation.v1`) and the library (`r1.engine.types`): requests, outputs, model info.

The server reads `GenerateRequest` -> `GenerationRequest` and writes `SampleDelta` / `SampleOutput` ->
`GenerateResponse`; the client does the reverse with the same tables, so a request sent through the service
is the very `GenerationRequest` the in-process engine would get, and `r1 generate` writes the same lines
either way.

Choices:
- `optional` fields that are unset take `SamplingParams`' defaults, which are the defaults the proto
  documents (temperature 1, top_p 1, top_k 0, min_p 0, max_tokens 256, ...); a field sent explicitly, even
  as the proto3 zero, means that value. The client sends every sampling field explicitly (seed only when
  set), so nothing depends on the server's defaults matching ours.
- Range checks are the library's (`GenerationRequest.validate`, run by every backend), so the message
  names the proto field (`sampling.top_p`, `n`, `prompt`) the same way in-process and on the wire. This
  module only checks what the library cannot see: which prompt of the oneof was sent, an empty text.
- Text prompts are tokenized here with the served tokenizer (`add_special_tokens`, default true); token-id
  prompts are used verbatim.
- Enums map through explicit tables both ways; an UNSPECIFIED or unknown wire value is refused with the
  field named, never guessed.
- The proto's sampling floats are 32-bit (`float`): 0.6 arrives as 0.6000000238. Values exact in float32
  (0, 0.5, 1, ...) cross unchanged; others differ from the in-process value by under 1e-7 relative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields

import torch

from r1.engine.types import FinishReason, GenerationRequest, ModelInfo, SampleDelta, SampleOutput, SamplingParams
from r1.errors import InvalidArgument
from services.common.validate import require_oneof
from services.protogen.generation.v1 import generation_pb2 as pb

FINISH_REASONS: dict[FinishReason, int] = {
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.STOP_STRING: pb.FINISH_REASON_STOP_STRING,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.ABORT: pb.FINISH_REASON_ABORT,
}
FINISH_REASONS_BY_WIRE: dict[int, FinishReason] = {wire: reason for reason, wire in FINISH_REASONS.items()}

DTYPES: dict[int, torch.dtype] = {
    pb.DTYPE_FLOAT32: torch.float32,
    pb.DTYPE_FLOAT16: torch.float16,
    pb.DTYPE_BFLOAT16: torch.bfloat16,
    pb.DTYPE_FLOAT8_E4M3FN: torch.float8_e4m3fn,
    pb.DTYPE_INT8: torch.int8,
    pb.DTYPE_INT32: torch.int32,
    pb.DTYPE_INT64: torch.int64,
    pb.DTYPE_BOOL: torch.bool,
}
WIRE_DTYPES: dict[torch.dtype, int] = {dtype: wire for wire, dtype in DTYPES.items()}

# Optional scalar fields of pb.SamplingParams, named as in the library's SamplingParams.
SAMPLING_SCALARS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "ignore_eos", "min_tokens",
                    "repetition_penalty", "presence_penalty", "frequency_penalty")
DEFAULT_SAMPLING = SamplingParams()

Tokenize = Callable[[str, bool], list[int]]


# ---------------------------------------------------------------------------------------------- server side


def sampling_from_proto(message: pb.SamplingParams) -> SamplingParams:
    """The library's SamplingParams; every unset optional field takes the documented default."""
    values = {name: getattr(message, name) for name in SAMPLING_SCALARS if message.HasField(name)}
    return SamplingParams(**values, stop=tuple(message.stop), stop_token_ids=tuple(message.stop_token_ids))


def request_from_proto(request: pb.GenerateRequest, tokenize: Tokenize) -> GenerationRequest:
    """The library request for a Generate call (not yet range-checked: the backend validates it)."""
    kind = require_oneof(request, "prompt", "prompt")
    if kind == "text":
        if not request.text:
            raise InvalidArgument("prompt.text", "is empty: send the prompt text (or token_ids)")
        add_special = request.add_special_tokens if request.HasField("add_special_tokens") else True
        prompt_ids = tuple(tokenize(request.text, add_special))
    else:
        prompt_ids = tuple(request.token_ids.ids)
    return GenerationRequest(
        request_id=request.request_id, prompt_ids=prompt_ids, n=request.n if request.HasField("n") else 1,
        sampling=sampling_from_proto(request.sampling), return_logprobs=request.return_logprobs,
        skip_special_tokens=request.skip_special_tokens if request.HasField("skip_special_tokens") else True)


def delta_to_proto(delta: SampleDelta) -> pb.GenerateResponse:
    chunk = pb.Chunk(index=delta.index, token_ids=delta.token_ids, logprobs=delta.logprobs)
    if delta.text:
        chunk.text = delta.text
    return pb.GenerateResponse(chunk=chunk)


def output_to_proto(output: SampleOutput) -> pb.GenerateResponse:
    usage = pb.Usage(prompt_tokens=output.prompt_tokens, completion_tokens=len(output.token_ids),
                     spec_draft_tokens=output.spec_draft_tokens, spec_accepted_tokens=output.spec_accepted_tokens,
                     cached_prompt_tokens=output.cached_prompt_tokens)
    return pb.GenerateResponse(final=pb.SampleResult(
        index=output.index, finish_reason=FINISH_REASONS[output.finish_reason], matched_stop=output.matched_stop,
        text=output.text, token_ids=output.token_ids, logprobs=output.logprobs, usage=usage,
        weight_version=output.weight_version, last_weight_version=output.last_weight_version))


def model_info_to_proto(info: ModelInfo) -> pb.ModelInfo:
    message = pb.ModelInfo(
        model_id=info.model_id, architecture=info.architecture, backend=info.backend,
        weight_version=info.weight_version, eos_token_ids=info.eos_token_ids,
        max_context_tokens=info.max_context_tokens, vocab_size=info.vocab_size, mtp_depth=info.mtp_depth,
        spec_tokens=info.spec_tokens, dtype=info.dtype, checkpoint=info.checkpoint,
        parameter_count=info.parameter_count)
    if info.bos_token_id is not None:
        message.bos_token_id = info.bos_token_id
    if info.pad_token_id is not None:
        message.pad_token_id = info.pad_token_id
    return message


def dtype_from_proto(value: int, path: str) -> torch.dtype:
    if value not in DTYPES:
        known = ", ".join(pb.DType.Name(v) for v in DTYPES)
        got = "DTYPE_UNSPECIFIED" if value == pb.DTYPE_UNSPECIFIED else str(value)
        raise InvalidArgument(path, f"is {got}; set one of: {known}")
    return DTYPES[value]


# ---------------------------------------------------------------------------------------------- client side


def request_to_proto(prompt: str | Sequence[int], *, request_id: str = "", n: int = 1,
                     sampling: SamplingParams = DEFAULT_SAMPLING, return_logprobs: bool = False,
                     skip_special_tokens: bool = True, add_special_tokens: bool = True,
                     final_only: bool = False) -> pb.GenerateRequest:
    """A Generate request: `prompt` is text (tokenized by the server) or token ids (used verbatim)."""
    message = pb.GenerateRequest(request_id=request_id, n=n, sampling=sampling_to_proto(sampling),
                                 return_logprobs=return_logprobs, skip_special_tokens=skip_special_tokens,
                                 final_only=final_only)
    if isinstance(prompt, str):
        message.text = prompt
        message.add_special_tokens = add_special_tokens
    else:
        message.token_ids.CopyFrom(pb.TokenIds(ids=list(prompt)))
    return message


def sampling_to_proto(sampling: SamplingParams) -> pb.SamplingParams:
    values = {name: getattr(sampling, name) for name in SAMPLING_SCALARS}
    if values["seed"] is None:
        del values["seed"]
    return pb.SamplingParams(**values, stop=sampling.stop, stop_token_ids=sampling.stop_token_ids)


def response_from_proto(message: pb.GenerateResponse) -> SampleDelta | SampleOutput:
    kind = message.WhichOneof("kind")
    if kind == "chunk":
        chunk = message.chunk
        return SampleDelta(chunk.index, tuple(chunk.token_ids), tuple(chunk.logprobs), chunk.text)
    if kind == "final":
        return output_from_proto(message.final)
    raise InvalidArgument("kind", "the server sent a GenerateResponse with neither chunk nor final")


def output_from_proto(message: pb.SampleResult) -> SampleOutput:
    if message.finish_reason not in FINISH_REASONS_BY_WIRE:
        raise InvalidArgument("finish_reason", f"unknown value {message.finish_reason} in sample {message.index}")
    usage = message.usage
    return SampleOutput(
        index=message.index, finish_reason=FINISH_REASONS_BY_WIRE[message.finish_reason],
        token_ids=tuple(message.token_ids), text=message.text, matched_stop=message.matched_stop,
        logprobs=tuple(message.logprobs), prompt_tokens=usage.prompt_tokens,
        cached_prompt_tokens=usage.cached_prompt_tokens, spec_draft_tokens=usage.spec_draft_tokens,
        spec_accepted_tokens=usage.spec_accepted_tokens, weight_version=message.weight_version,
        last_weight_version=message.last_weight_version)


def model_info_from_proto(message: pb.ModelInfo) -> ModelInfo:
    values = {f.name: getattr(message, f.name) for f in fields(ModelInfo)}
    values["eos_token_ids"] = tuple(message.eos_token_ids)
    for name in ("bos_token_id", "pad_token_id"):
        values[name] = getattr(message, name) if message.HasField(name) else None
    return ModelInfo(**values)


def dtype_to_proto(dtype: torch.dtype, path: str) -> int:
    if dtype not in WIRE_DTYPES:
        known = ", ".join(str(d).removeprefix("torch.") for d in WIRE_DTYPES)
        raise InvalidArgument(path, f"dtype {str(dtype).removeprefix('torch.')} has no wire value; use one of: "
                                    f"{known}")
    return WIRE_DTYPES[dtype]
