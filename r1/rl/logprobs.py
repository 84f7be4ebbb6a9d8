"""Per-token log-probabilities of sampled completions under a policy: what the policy losses take.

`completion_logprobs(model, prompts, completions)` right-pads prompt + completion per row, runs the model once
(with gradients when enabled), and gathers log softmax(logits[t - 1])[token t] for every completion token.
Returns logprobs [N, T] and mask [N, T] (T = the longest completion), plus the logits at those positions
for the entropy diagnostic when asked. The model is a `DeepSeekV3ForCausalLM` (our teacher) or any module
whose call returns an object with `.logits` (transformers students).

For our teacher the prompt prefix every row shares (the R1-Zero system frame, ~100 of a rollout's ~150
tokens) runs once: its latent cache is computed for one row and shared by the batch (views, no copies),
and gradients flow through it once, as in pretraining's `shared_prefix_loss`. Equal to the plain forward
(tested); it cuts the policy pass to about a third on the R1-Zero prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def padded(prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int):
    """ids [N, L] (prompt + completion, right-padded), the index of each row's first completion token [N],
    and completion lengths [N]."""
    rows = [list(p) + list(c) for p, c in zip(prompts, completions)]
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
    starts = torch.tensor([len(p) for p in prompts])
    lengths = torch.tensor([len(c) for c in completions])
    return ids, starts, lengths


def shared_prefix(prompts: Sequence[Sequence[int]]) -> list[int]:
    """The longest token prefix all prompts start with, at least one token short of the shortest prompt (the
    logits predicting each row's first completion token must come from its own suffix)."""
    first = list(prompts[0])
    length = min(len(p) for p in prompts) - 1
    for prompt in prompts[1:]:
        while length > 0 and list(prompt[:length]) != first[:length]:
            length -= 1
    return first[:max(length, 0)]


def _logits(model, prefix: list[int], ids: torch.Tensor) -> torch.Tensor:
    """Logits [N, L, V] of the suffix rows `ids`, each continuing `prefix` (run once, cache shared)."""
    from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

    if not prefix or not isinstance(model, DeepSeekV3ForCausalLM):
        return model(ids).logits
    cache = model.new_cache()
    model.hidden_states(torch.tensor([prefix]), cache=cache)
    cache.expand(ids.shape[0])
    return model.lm_head(model.hidden_states(ids, cache=cache))


def completion_logprobs(model, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                        pad_id: int, with_logits: bool = False, share_prefix: bool = True):
    """(logprobs [N, T], mask [N, T]) or, with_logits, (logprobs, mask, logits [N, T, V])."""
    from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

    prefix = shared_prefix(prompts) if share_prefix and isinstance(model, DeepSeekV3ForCausalLM) else []
    ids, starts, lengths = padded([p[len(prefix):] for p in prompts], completions, pad_id)
    width = int(lengths.max())
    logits = _logits(model, prefix, ids)  # [N, L, V]
    offsets = torch.arange(width)[None]  # [1, T]
    mask = offsets < lengths[:, None]  # [N, T]
    targets = (starts[:, None] + offsets).clamp(max=ids.shape[1] - 1)  # positions of completion tokens
    picked = logits.gather(1, (targets - 1)[..., None].expand(-1, -1, logits.shape[-1]))  # [N, T, V]
    logprobs = picked.float().log_softmax(dim=-1).gather(2, ids.gather(1, targets)[..., None]).squeeze(-1)
    logprobs = logprobs * mask
    return (logprobs, mask.float(), picked) if with_logits else (logprobs, mask.float())
