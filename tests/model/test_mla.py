"""MLA: the absorbed decode path equals the naive one, and the cache holds exactly the latent and rope key."""

from __future__ import annotations

import pytest
import torch

from tests.model.conftest import random_model


def test_step_by_step_absorbed_decode_reproduces_the_full_forward(model, tokens):
    with torch.no_grad():
        full = model(tokens).logits
        cache = model.new_cache()
        steps = [model(tokens[:, :10], cache=cache).logits]  # naive prefill
        steps += [model(tokens[:, t:t + 1], cache=cache).logits for t in range(10, tokens.shape[1])]  # absorbed
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("new_tokens", [1, 3])
def test_absorbed_and_naive_attention_agree_against_the_same_cache(tokens, new_tokens):
    model = random_model(q_lora_rank=None)
    with torch.no_grad():
        outputs = []
        for absorbed in (False, True):
            cache = model.new_cache()
            model(tokens[:, :16], cache=cache)
            outputs.append(model(tokens[:, 16:16 + new_tokens], cache=cache, absorbed=absorbed).logits)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)


@pytest.mark.parametrize("dtype, size", [(torch.float32, 4), (torch.bfloat16, 2)])
def test_cache_bytes_per_token_are_latent_plus_rope_key_per_layer(model, tokens, dtype, size):
    typed = random_model().to(dtype)
    cache = typed.new_cache()
    with torch.no_grad():
        typed(tokens, cache=cache)
    c = typed.config
    assert cache.bytes_per_token() == (c.kv_lora_rank + c.qk_rope_head_dim) * c.num_hidden_layers * size
    assert cache.bytes_per_token() == c.cache_bytes_per_token(size)
    assert cache.length == tokens.shape[1]


def test_padding_keys_are_masked(model):
    """A left-padded sequence gives the same last logits as the unpadded one, with positions shifted back."""
    ids = torch.randint(3, 300, (1, 8), generator=torch.Generator().manual_seed(3))
    padded = torch.cat([torch.full((1, 4), 2), ids], dim=1)
    key_mask = torch.cat([torch.zeros(1, 4), torch.ones(1, 8)], dim=1)
    positions = torch.cat([torch.zeros(1, 4, dtype=torch.long), torch.arange(8)[None]], dim=1)
    with torch.no_grad():
        plain = model(ids).logits[:, -1]
        masked = model(padded, positions=positions, key_mask=key_mask).logits[:, -1]
    assert torch.allclose(plain, masked, atol=1e-5)
