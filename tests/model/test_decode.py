"""The reference decoder: padded batches decode as each prompt would alone, and greedy matches transformers."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from r1.model.checkpoint import save_pretrained
from r1.model.decode import generate

EOS, PAD = 1, 2


def test_a_padded_batch_decodes_each_prompt_as_alone(model):
    prompts = [[5, 9, 14, 200, 33, 7], [88, 12], [150, 151, 152, 153]]
    together = generate(model, prompts, max_new_tokens=10, eos_id=EOS, pad_id=PAD)
    alone = [generate(model, [p], max_new_tokens=10, eos_id=EOS, pad_id=PAD)[0] for p in prompts]
    assert together == alone
    assert all(len(out) == 10 for out in together if EOS not in out)


def test_greedy_matches_transformers_generate(model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_pretrained(model, tmp_path)
    theirs = AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32).eval()
    prompt = [4, 77, 123, 9, 250, 31]
    ours = generate(model, [prompt], max_new_tokens=12, eos_id=-1, pad_id=PAD)[0]
    with torch.no_grad():
        reference = theirs.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False, eos_token_id=None,
                                    pad_token_id=PAD)[0, len(prompt):].tolist()
    assert ours == reference


def test_sampling_is_seeded(model):
    prompt = [[5, 9, 14]]
    first = generate(model, prompt, 8, EOS, PAD, temperature=1.0, seed=3)
    assert first == generate(model, prompt, 8, EOS, PAD, temperature=1.0, seed=3)
    assert first != generate(model, prompt, 8, EOS, PAD, temperature=1.0, seed=4)
