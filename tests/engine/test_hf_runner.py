"""The student runner's slot cache: decode reads the packed rows in place, and every step's logits are the model's
own on the full sequence, through cache growth, finished samples leaving (their row refilled by the last one),
new samples joining, the caller's slot order, and decoding only some of the slots."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from r1.engine.hf_runner import HFRunner


def full_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1]


def test_decode_equals_the_full_forward_as_samples_join_and_leave(student_dir):
    model = AutoModelForCausalLM.from_pretrained(str(student_dir), dtype=torch.float32).eval()
    runner = HFRunner(model, max_slots=4, max_context=64, initial_capacity=4)
    generator = torch.Generator().manual_seed(0)
    sequences: dict[int, list[int]] = {}

    def admit(prompt: list[int], n: int) -> None:
        slots = [runner.allocate() for _ in range(n)]
        logits = runner.prefill(prompt, slots)
        assert torch.allclose(logits, full_logits(model, prompt), atol=1e-5)
        sequences.update({slot: list(prompt) for slot in slots})

    def step(slots: list[int]) -> None:
        tokens = torch.randint(3, 300, (len(slots),), generator=generator)
        logits = runner.decode(slots, tokens)
        for slot, token, row in zip(slots, tokens.tolist(), logits):
            sequences[slot].append(token)
            assert torch.allclose(row, full_logits(model, sequences[slot]), atol=1e-5), slot

    admit([0, 17, 99, 250, 31], n=2)
    admit([0, 5], n=1)
    for _ in range(3):
        step(list(sequences))
    assert runner.capacity > 4  # grew by doubling past the initial 4 entries
    first = next(iter(sequences))
    runner.release(first)  # the last row moves into the freed one
    del sequences[first]
    step(list(reversed(sequences)))  # any order of the slots
    admit([0, 120, 121, 122, 123, 124, 125, 126, 127, 128], n=2)
    assert runner.free_slots == 0
    for _ in range(6):
        step(list(sequences))
    step(list(sequences)[1:3])  # a subset: those rows are gathered, the others keep their entries
    step(list(sequences))
    assert runner.cache_bytes(list(sequences)) == sum(len(s) for s in sequences.values()) * (
        2 * runner.layers * runner.heads * runner.head_dim * 4)
    for slot in list(sequences):
        runner.release(slot)
    assert runner.free_slots == 4 and runner.live == 0
