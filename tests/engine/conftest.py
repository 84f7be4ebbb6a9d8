"""Checkpoints for the engine tests, built here: a random tiny teacher, a teacher whose MTP module has learnt a
repeating pattern (so drafts get accepted), and a tiny random Qwen2 student, each with a local tokenizer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
from r1.engine.types import GenerationRequest, SampleDelta, SampleOutput, SamplingParams
from r1.model.checkpoint import save_pretrained
from r1.model.config import preset
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM, training_loss
from r1.model.tokenizer import default_corpus, train_tokenizer

PATTERN = [40, 41, 42, 43, 44, 45]


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(default_corpus(), vocab_size=400)


def teacher(tokenizer, seed: int = 0, **overrides) -> DeepSeekV3ForCausalLM:
    torch.manual_seed(seed)
    model = DeepSeekV3ForCausalLM(preset("tiny", vocab_size=len(tokenizer), **overrides)).eval()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.normal_(0, 0.05)
    return model


@pytest.fixture(scope="session")
def teacher_dir(tokenizer, tmp_path_factory) -> Path:
    return save_pretrained(teacher(tokenizer), tmp_path_factory.mktemp("teacher"), tokenizer=tokenizer)


@pytest.fixture(scope="session")
def patterned_teacher_dir(tokenizer, tmp_path_factory) -> Path:
    """A teacher trained (main and MTP) on a repeating 6-token cycle: greedy decoding continues the cycle
    and the MTP module predicts the token after next, so speculation is accepted most of the time."""
    model = teacher(tokenizer, seed=1)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        starts = torch.randint(0, len(PATTERN), (8,), generator=generator)
        ids = torch.tensor([[PATTERN[(s + i) % len(PATTERN)] for i in range(24)] for s in starts.tolist()])
        loss, _ = training_loss(model, ids, mtp_weight=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_pretrained(model.eval(), tmp_path_factory.mktemp("patterned"), tokenizer=tokenizer)


@pytest.fixture(scope="session")
def student_dir(tokenizer, tmp_path_factory) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config).eval()
    directory = tmp_path_factory.mktemp("student")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


class Engine:
    """A started TorchEngine on its own event loop, driven synchronously by the tests."""

    def __init__(self, **config):
        self.loop = asyncio.new_event_loop()
        self.engine = TorchEngine(TorchEngineConfig(**config))
        self.run(self.engine.start())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def collect(self, *requests: GenerationRequest) -> list[list[SampleOutput]]:
        """Runs the requests concurrently; per request, its outputs by index (deltas checked against them)."""
        async def one(request):
            deltas: dict[int, list[SampleDelta]] = {}
            outputs = {}
            async for item in self.engine.generate(request):
                if isinstance(item, SampleDelta):
                    assert item.index not in outputs, "a delta after its sample's final output"
                    deltas.setdefault(item.index, []).append(item)
                else:
                    assert item.index not in outputs, "two final outputs for one sample"
                    outputs[item.index] = item
            for index, output in outputs.items():
                mine = deltas.get(index, [])
                assert tuple(t for d in mine for t in d.token_ids) == output.token_ids
                assert "".join(d.text for d in mine) == output.text
            return [outputs[i] for i in sorted(outputs)]

        async def every():
            return await asyncio.gather(*(one(r) for r in requests))

        return self.run(every())

    def close(self):
        self.run(self.engine.close())
        self.loop.close()


@pytest.fixture
def make_engine():
    engines = []

    def make(**config) -> Engine:
        engines.append(Engine(**config))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


def request(prompt, request_id: str = "r", n: int = 1, **sampling) -> GenerationRequest:
    return GenerationRequest(request_id, tuple(prompt), n=n, sampling=SamplingParams(**sampling),
                             return_logprobs=True)
