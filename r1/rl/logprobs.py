"""Per-token log-probabilities of sampled completions under a policy: what the policy losses take.

`completion_logprobs(model, prompts, completions)` right-pads prompt + completion per row, runs the model once
(with gradients when enabled), and gathers log softmax(logits[t - 1])[token t] for every completion token.
Returns logprobs [N, T] and mask [N, T] (T = the longest completion), plus the logits at those positions
for the entropy diagnostic when asked. The model is a `DeepSeekV3ForCausalLM` (our teacher) or any module
whose call returns an object with `.logits` (transformers students).
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


def completion_logprobs(model, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                        pad_id: int, with_logits: bool = False):
    """(logprobs [N, T], mask [N, T]) or, with_logits, (logprobs, mask, logits [N, T, V])."""
    ids, starts, lengths = padded(prompts, completions, pad_id)
    width = int(lengths.max())
    logits = model(ids).logits  # [N, L, V]
    offsets = torch.arange(width)[None]  # [1, T]
    mask = offsets < lengths[:, None]  # [N, T]
    targets = (starts[:, None] + offsets).clamp(max=ids.shape[1] - 1)  # positions of completion tokens
    picked = logits.gather(1, (targets - 1)[..., None].expand(-1, -1, logits.shape[-1]))  # [N, T, V]
    logprobs = picked.float().log_softmax(dim=-1).gather(2, ids.gather(1, targets)[..., None]).squeeze(-1)
    logprobs = logprobs * mask
    return (logprobs, mask.float(), picked) if with_logits else (logprobs, mask.float())
