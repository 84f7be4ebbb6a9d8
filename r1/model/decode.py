"""A plain batched decoder for the teacher: prefill, then one token at a time against the latent cache.

The reference the pretraining evaluation uses, and what the generation engine's outputs are checked against:
no continuous batching, no speculation. Prompts of different lengths are left-padded; padding keys are
masked and positions count real tokens only, so a padded prompt decodes exactly as it would alone.
Greedy when `temperature` is 0, else sampling from softmax(logits / temperature) with a seeded generator.
A sequence stops at `eos_id` (not included in its output) or after `max_new_tokens`.
"""

from __future__ import annotations

import torch

from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM


@torch.no_grad()
def generate(model: DeepSeekV3ForCausalLM, prompts: list[list[int]], max_new_tokens: int, eos_id: int,
             pad_id: int, temperature: float = 0.0, seed: int = 0) -> list[list[int]]:
    """The new tokens of each prompt, in order."""
    if not prompts or any(not p for p in prompts):
        raise ValueError("every prompt needs at least one token")
    longest = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (longest - len(p)) + p for p in prompts])  # [B, P]
    key_mask = (torch.arange(longest)[None] >= torch.tensor([longest - len(p) for p in prompts])[:, None])
    positions = (key_mask.long().cumsum(dim=1) - 1).clamp(min=0)  # [B, P], real tokens counted from 0
    generator = torch.Generator().manual_seed(seed)
    cache = model.new_cache()
    logits = model(ids, positions=positions, cache=cache, key_mask=key_mask).logits[:, -1]
    next_position = positions[:, -1] + 1
    outputs: list[list[int]] = [[] for _ in prompts]
    done = torch.zeros(len(prompts), dtype=torch.bool)
    for _ in range(max_new_tokens):
        token = _pick(logits, temperature, generator)  # [B]
        for i, t in enumerate(token.tolist()):
            if not done[i]:
                if t == eos_id:
                    done[i] = True
                else:
                    outputs[i].append(t)
        if done.all():
            break
        key_mask = torch.cat([key_mask, torch.ones(len(prompts), 1, dtype=torch.bool)], dim=1)
        logits = model(token[:, None], positions=next_position[:, None], cache=cache, key_mask=key_mask).logits[:, -1]
        next_position = next_position + 1
    return outputs


def _pick(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = (logits.float() / temperature).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
