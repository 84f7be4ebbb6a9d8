"""Weight updates: the chunk rules of `WeightChunk` one by one (assembler), then UpdateWeights and
LoadCheckpoint on a real server: applied between decode steps while requests stream on, refused whole
(weights and outputs unchanged) when anything is wrong, with the status the proto names."""

from __future__ import annotations

import hashlib
import threading
import time

import grpc
import pytest
import torch

from r1.engine.types import FinishReason, SampleOutput, SamplingParams
from r1.errors import DataLoss, FailedPrecondition, InvalidArgument, NotFound
from r1.model.checkpoint import load_pretrained, to_checkpoint_names
from r1.model.decode import generate as reference_generate
from services.generation.client import GenerationClient, tensor_bytes, weight_chunks
from services.generation.weights import WeightAssembler
from services.protogen.generation.v1 import generation_pb2 as pb
from services.protogen.generation.v1 import generation_pb2_grpc
from tests.engine.conftest import teacher
from tests.services.generation.conftest import running_generation

PROMPT = [0, 17, 99, 250, 31, 8, 77]
GREEDY = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
ENDLESS = SamplingParams(temperature=0, max_tokens=2000, ignore_eos=True)  # runs until aborted
NAME = "model.layers.0.self_attn.kv_b_proj.weight"
TENSORS = {
    "f32": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7,
    "bf16": torch.linspace(-2, 2, 10).to(torch.bfloat16),
    "f16": torch.tensor([[1.5, -0.25]], dtype=torch.float16),
    "f8": torch.tensor([0.5, -1.0, 448.0]).to(torch.float8_e4m3fn),
    "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "i32": torch.tensor([2 ** 31 - 1, -5], dtype=torch.int32),
    "i64": torch.tensor([[2 ** 40]], dtype=torch.int64),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.25),
    "empty": torch.zeros(0, 4),
}


def assemble(chunks, served: int = 0, max_bytes: int = 0):
    assembler = WeightAssembler(served, max_bytes)
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.finish()


def chunks(tensors=None, version: int = 1, chunk_bytes: int = 5) -> list[pb.WeightChunk]:
    return list(weight_chunks(version, tensors or {"a": TENSORS["f32"], "b": TENSORS["i64"]}, chunk_bytes))


# ------------------------------------------------------------------------------------------------ assembler


@pytest.mark.parametrize("chunk_bytes", [1, 7, 1 << 20])
def test_every_dtype_and_shape_is_reassembled_bit_for_bit(chunk_bytes):
    stream = chunks(TENSORS, version=4, chunk_bytes=chunk_bytes)
    assert [c.last for c in stream].count(True) == 1 and stream[-1].last
    update = assemble(stream, served=3)
    assert update.version == 4 and list(update.tensors) == list(TENSORS)
    assert update.bytes_received == sum(len(tensor_bytes(t)) for t in TENSORS.values())
    for name, tensor in TENSORS.items():
        got = update.tensors[name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape and tensor_bytes(got) == tensor_bytes(tensor)


def test_a_trailer_may_end_the_update_and_later_slices_may_omit_the_header():
    stream = chunks({"a": TENSORS["f32"]})
    stream[-1].last = False
    for chunk in stream[1:]:
        chunk.name = ""
    stream.append(pb.WeightChunk(version=1, last=True))
    assert torch.equal(assemble(stream).tensors["a"], TENSORS["f32"])


def edit(stream, index, **fields):
    stream = [pb.WeightChunk.FromString(c.SerializeToString()) for c in stream]
    for key, value in fields.items():
        if key == "shape":
            del stream[index].shape[:]
            stream[index].shape.extend(value)
        else:
            setattr(stream[index], key, value)
    return stream


def swap(stream, i, j):
    stream = list(stream)
    stream[i], stream[j] = stream[j], stream[i]
    return stream


BROKEN = {
    "a gap": (lambda s: s[:1] + s[2:], InvalidArgument, "offset: chunk 2: tensor 'a' continues at offset 10, a gap"),
    "an overlap": (lambda s: edit(s, 1, offset=3), InvalidArgument, "an overlap"),
    "slices out of order": (lambda s: swap(s, 1, 2), InvalidArgument, "offset"),
    "interleaved tensors": (lambda s: s[:2] + s[10:11] + s[2:], InvalidArgument,
                            "starts tensor 'b' while 'a' has 10 of 48 bytes"),
    "a tensor sent twice": (lambda s: s[:11] + edit(s, 11, last=False)[11:] + s[:1], InvalidArgument,
                            "name: chunk 13: tensor 'a' was already sent in this update"),
    "a chunk after last": (lambda s: s + [pb.WeightChunk(version=1, last=True)], InvalidArgument,
                           "last: chunk 13 arrived after the chunk with last = true"),
    "a different version": (lambda s: edit(s, 3, version=2), InvalidArgument, "version: chunk 4 has version 2"),
    "no dtype": (lambda s: edit(s, 0, dtype=pb.DTYPE_UNSPECIFIED), InvalidArgument, "dtype: is DTYPE_UNSPECIFIED"),
    "total_bytes not prod(shape) x size": (lambda s: edit(s, 0, total_bytes=47), InvalidArgument,
                                           "total_bytes: tensor 'a': is 47, but shape [3, 4] of float32 is 48"),
    "a header that changes": (lambda s: edit(s, 2, shape=[4, 3]), InvalidArgument, "shape: chunk 3: differs"),
    "no name on a first slice": (lambda s: edit(s, 10, name=""), InvalidArgument, "name"),
    "first slice not at offset 0": (lambda s: s[1:], InvalidArgument, "offset"),
    "no sha256 on the completing slice": (lambda s: edit(s, 9, sha256=""), InvalidArgument,
                                          "sha256: chunk 10: is required on the slice that completes tensor 'a'"),
    "a sha256 that changes": (lambda s: edit(s, 0, sha256="ab" * 32), InvalidArgument, "sha256: chunk 10: differs"),
    "a wrong sha256": (lambda s: edit(s, 9, sha256=hashlib.sha256(b"x").hexdigest()), DataLoss,
                       "tensor 'a': the bytes received hash to sha256"),
    "corrupted bytes": (lambda s: edit(s, 4, data=b"\x00" * 5), DataLoss, "resend the update"),
    "more bytes than total_bytes": (lambda s: edit(s, 9, data=b"\x00" * 6), InvalidArgument, "more than its total"),
    "no last chunk": (lambda s: edit(s, 11, last=False), InvalidArgument,
                      "last: the stream ended without a chunk with last = true; nothing was applied"),
    "an incomplete tensor at the end": (lambda s: s[:9] + [pb.WeightChunk(version=1, last=True)], InvalidArgument,
                                        "data: tensor 'a' is incomplete: 45 of 48 bytes"),
    "no chunk at all": (lambda s: [], InvalidArgument, "the stream carried no chunk"),
    "only a trailer": (lambda s: [pb.WeightChunk(version=1, last=True)], InvalidArgument, "carries no tensor"),
    "an empty chunk that is not the trailer": (lambda s: [pb.WeightChunk(version=1)] + s, InvalidArgument,
                                               "only the trailer"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_stream_is_refused_naming_the_rule(case):
    mutate, error, message = BROKEN[case]
    stream = chunks()  # "a": 48 bytes in 10 slices of 5, "b": 8 bytes in 2
    assert len(stream) == 12
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        assemble(mutate(stream))


def test_the_version_must_exceed_the_served_one_and_the_update_may_be_bounded():
    with pytest.raises(FailedPrecondition, match="version 3 must be greater than the served weight version 3"):
        assemble(chunks(version=3), served=3)
    with pytest.raises(InvalidArgument, match="max_update_bytes = 50"):
        assemble(chunks(), max_bytes=50)
    assert assemble(chunks(), max_bytes=56).bytes_received == 56


# ------------------------------------------------------------------------------------------------ service


@pytest.fixture
def fresh(teacher_dir):
    with running_generation(teacher_dir, max_context_tokens=2048) as server, \
            GenerationClient(server.target, timeout=120) as client:
        yield server, client


@pytest.fixture(scope="module")
def new_weights(tokenizer):
    model = teacher(tokenizer, seed=5)
    return model, to_checkpoint_names(model.state_dict(), model.config)


class Streaming:
    """An endless request streaming on a thread until aborted."""

    def __init__(self, client: GenerationClient, request_id: str, n: int = 2):
        self.items: list = []
        self.client = client
        self.request_id = request_id
        self.thread = threading.Thread(target=self._run, args=(n,))
        self.thread.start()

    def _run(self, n: int) -> None:
        for item in self.client.stream(PROMPT, n=n, sampling=ENDLESS, request_id=self.request_id):
            self.items.append(item)

    def wait_for_more(self, than: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.items) <= than:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the stream stalled"
            time.sleep(0.01)

    def finish(self) -> list[SampleOutput]:
        self.client.abort(self.request_id)
        self.thread.join(60)
        return sorted((i for i in self.items if isinstance(i, SampleOutput)), key=lambda o: o.index)


def test_an_update_is_swapped_in_while_requests_stream_on(fresh, new_weights):
    server, client = fresh
    model, update = new_weights
    [before] = client.generate(PROMPT, sampling=GREEDY)
    streams = [Streaming(client, f"busy-{k}") for k in range(2)]
    for stream in streams:
        stream.wait_for_more(than=0)
    result = client.update_weights(1, update, chunk_bytes=64 * 1024)
    assert (result.version, result.tensors_updated) == (1, len(update))
    assert result.bytes_received == sum(t.numel() * t.element_size() for t in update.values())
    assert result.elapsed_seconds > 0
    for stream in streams:  # still streaming after the swap, now with the new weights
        stream.wait_for_more(than=len(stream.items))
    for stream in streams:
        finals = stream.finish()
        assert [f.index for f in finals] == [0, 1]
        for final in finals:
            assert final.finish_reason is FinishReason.ABORT
            assert (final.weight_version, final.last_weight_version) == (0, 1)
    [after] = client.generate(PROMPT, sampling=GREEDY)
    assert (after.weight_version, after.last_weight_version) == (1, 1) and after.token_ids != before.token_ids
    assert list(after.token_ids) == reference_generate(model, [PROMPT], 8, eos_id=-1, pad_id=2)[0]
    assert client.model_info().weight_version == 1
    from tests.services.common.test_server import scrape

    samples = scrape(server.metrics_port)
    assert samples["r1_generation_weight_version"][()] == 1
    assert samples["r1_generation_weight_update_seconds_count"][()] == 1


def test_a_bad_update_is_refused_whole_and_the_served_weights_stay(fresh, new_weights):
    server, client = fresh
    _, update = new_weights
    [before] = client.generate(PROMPT, sampling=GREEDY)
    bad_shape = {**update, NAME: update[NAME][:1]}
    with pytest.raises(InvalidArgument, match=rf"tensors\[{NAME}\]: has shape \[1, .*; the served parameter is"):
        client.update_weights(1, bad_shape)
    with pytest.raises(InvalidArgument, match="has dtype int32; a floating dtype is needed"):
        client.update_weights(1, {**update, NAME: update[NAME].to(torch.int32)})
    with pytest.raises(InvalidArgument, match="is not a parameter of the served model"):
        client.update_weights(1, {"model.layers.0.self_attn.nope.weight": update[NAME]})
    stream = list(weight_chunks(1, update, 64 * 1024))
    stream[-1].sha256 = hashlib.sha256(b"something else").hexdigest()
    with grpc.insecure_channel(server.target) as channel:
        stub = generation_pb2_grpc.GenerationStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.UpdateWeights(iter(stream), timeout=60)
        assert raised.value.code() == grpc.StatusCode.DATA_LOSS and "hash to sha256" in raised.value.details()
        with pytest.raises(grpc.RpcError) as raised:  # the stream ends before `last`
            stub.UpdateWeights(iter(stream[:-1]), timeout=60)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith("data: tensor")
        cancelled_stream_is_not_applied(stub, stream)
    with pytest.raises(FailedPrecondition, match="version 0 must be greater than the served weight version 0"):
        client.update_weights(0, update)
    assert client.model_info().weight_version == 0
    assert client.generate(PROMPT, sampling=GREEDY) == [before]  # the same weights, the same output
    assert client.update_weights(5, {NAME: update[NAME]}).tensors_updated == 1
    with pytest.raises(FailedPrecondition, match="version 4 must be greater than the served weight version 5"):
        client.update_weights(4, update)
    assert client.model_info().weight_version == 5


def cancelled_stream_is_not_applied(stub, stream) -> None:
    release = threading.Event()

    def slow():
        yield from stream[:2]
        release.wait(30)

    future = stub.UpdateWeights.future(slow(), timeout=60)
    time.sleep(0.2)  # let the first chunks reach the server
    future.cancel()
    release.set()
    assert future.cancelled()


def test_load_checkpoint_aborts_what_is_in_flight_and_serves_the_new_weights(fresh, patterned_teacher_dir):
    server, client = fresh
    stream = Streaming(client, "during-load", n=1)
    stream.wait_for_more(than=0)
    info = client.load_checkpoint(str(patterned_teacher_dir), version=7)
    assert (info.weight_version, info.checkpoint) == (7, str(patterned_teacher_dir))
    stream.thread.join(60)
    [aborted] = [i for i in stream.items if isinstance(i, SampleOutput)]
    assert aborted.finish_reason is FinishReason.ABORT
    [after] = client.generate(PROMPT, sampling=GREEDY)
    expected = reference_generate(load_pretrained(patterned_teacher_dir), [PROMPT], 8, eos_id=-1, pad_id=2)[0]
    assert list(after.token_ids) == expected and after.weight_version == 7
    assert client.load_checkpoint(str(patterned_teacher_dir), version=0).weight_version == 0  # need not increase
    with pytest.raises(NotFound, match="no checkpoint directory at /no/such/checkpoint"):
        client.load_checkpoint("/no/such/checkpoint", version=8)
    with pytest.raises(InvalidArgument, match="path: is required"):
        client.load_checkpoint("", version=8)
    assert client.model_info().weight_version == 0


def test_a_float8_update_is_cast_to_the_served_dtype(fresh, new_weights):
    _, client = fresh
    _, update = new_weights
    eight_bit = update[NAME].to(torch.float8_e4m3fn)
    assert client.update_weights(1, {NAME: eight_bit}).tensors_updated == 1
