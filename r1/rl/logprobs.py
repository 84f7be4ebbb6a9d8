"""Per-token log-probabilities of sampled completions under a policy: what the policy losses take.

`completion_logprobs(model, prompts, completions)` gathers log softmax(logits[t - 1])[token t] for every
completion token, with gradients when enabled. Returns logprobs [N, T] and mask [N, T] (T = the longest
completion), plus the logits at those positions for the entropy diagnostic when asked. The model is a
`DeepSeekV3ForCausalLM` (our teacher) or a transformers causal LM whose attention keeps plain keys and values
(the Qwen2 / Llama students).

The plain pass (`share_prefix=False`) right-pads prompt + completion per row and runs the model once. By
default, prompt tokens shared between rows run once, and gradients flow through them once, as in
pretraining's `shared_prefix_loss`; both are equal to the plain pass (tested):
- our teacher: the prefix every row shares (the R1-Zero system frame, ~100 of a rollout's ~150 tokens)
  runs for one row and its latent cache is shared by the batch (views, no copies);
- transformers students (`_grouped_logits`): GRPO rows come in groups of G completions of one prompt, so
  (1) the prefix every prompt shares runs once, (2) each distinct prompt's rest runs once on top of it
  (left-padded, so every prompt ends at the last position), (3) its keys and values are expanded to the
  rows of its group and the completions run on top (without their last token, which predicts nothing).
  4-D masks hide the padding; positions are each row's own. On the R1-Zero prompts (8 x 8 rows, ~180-token
  prompts, 64-token completions) this is about a third of the plain pass's tokens.
"""

from __future__ import annotations

import inspect
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


def _teacher_logits(model, prefix: list[int], ids: torch.Tensor) -> torch.Tensor:
    """Logits [N, L, V] of the suffix rows `ids`, each continuing `prefix` (run once, cache shared)."""
    if not prefix:
        return model(ids).logits
    cache = model.new_cache()
    model.hidden_states(torch.tensor([prefix]), cache=cache)
    cache.expand(ids.shape[0])
    return model.lm_head(model.hidden_states(ids, cache=cache))


def completion_logprobs(model, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                        pad_id: int, with_logits: bool = False, share_prefix: bool = True):
    """(logprobs [N, T], mask [N, T]) or, with_logits, (logprobs, mask, logits [N, T, V])."""
    from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

    teacher = isinstance(model, DeepSeekV3ForCausalLM)
    prefix = shared_prefix(prompts) if share_prefix and teacher else []
    ids, starts, lengths = padded([p[len(prefix):] for p in prompts], completions, pad_id)
    width = int(lengths.max())
    offsets = torch.arange(width)[None]  # [1, T]
    mask = offsets < lengths[:, None]  # [N, T]
    targets = (starts[:, None] + offsets).clamp(max=ids.shape[1] - 1)  # positions of completion tokens
    tokens = ids.gather(1, targets)  # [N, T]
    if share_prefix and not teacher:
        picked = _grouped_logits(model, prompts, completions, pad_id, width)  # [N, T, V]
    else:
        logits = _teacher_logits(model, prefix, ids) if teacher else model(ids).logits  # [N, L, V]
        picked = logits.gather(1, (targets - 1)[..., None].expand(-1, -1, logits.shape[-1]))  # [N, T, V]
    tokens, mask = tokens.to(picked.device), mask.to(picked.device)
    logprobs = picked.float().log_softmax(dim=-1).gather(2, tokens[..., None]).squeeze(-1)
    logprobs = logprobs * mask
    return (logprobs, mask.float(), picked) if with_logits else (logprobs, mask.float())


# ------------------------------------------------------------------------------ students: shared prompts


def _grouped_logits(model, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int,
                    width: int) -> torch.Tensor:
    """Logits [N, width, V] predicting each completion token (see the module docstring), for a transformers
    causal LM: the common prefix, then each distinct prompt's rest, then the completions."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    distinct: dict[tuple[int, ...], int] = {}
    group = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompts], device=device)  # [N]
    unique = [list(p) for p in distinct]
    common = shared_prefix(unique)
    c0 = len(common)
    call = _Caller(model)
    # 1. the prefix every prompt shares, one row
    cache = call(torch.tensor([common], device=device), None, None, None, keep_last=True)[1] if c0 else None
    # 2. each distinct prompt's rest, left-padded to S: [U, S]
    rests = [p[c0:] for p in unique]
    s = max(len(r) for r in rests)
    pads = torch.tensor([s - len(r) for r in rests], device=device)  # [U]
    ids = torch.tensor([[pad_id] * (s - len(r)) + r for r in rests], device=device)
    query = torch.arange(s, device=device)
    rest_keys = query[None, None, :] >= pads[:, None, None]  # [U, 1, S]: not padding
    allowed = rest_keys & (query[None, None, :] <= query[None, :, None])  # [U, S, S]: causal
    allowed = torch.cat([torch.ones(len(rests), s, c0, dtype=torch.bool, device=device), allowed], dim=2)
    positions = (c0 + query[None] - pads[:, None]).clamp(min=0)  # [U, S]
    expanded = _expanded(cache, torch.zeros(len(rests), dtype=torch.long, device=device)) if cache else None
    last, cache = call(ids, _additive(allowed, dtype), positions, expanded, keep_last=True)  # [U, 1, V]
    first = last[group]  # [N, 1, V]: predicts each row's first completion token
    if width <= 1:
        return first[:, :width]
    # 3. the completions without their last token, on their group's prompt: [N, width - 1]
    body = torch.tensor([list(c[:width - 1]) + [pad_id] * (width - 1 - len(c[:width - 1])) for c in completions],
                        device=device)
    steps = torch.arange(width - 1, device=device)
    prompt_keys = torch.cat([torch.ones(len(prompts), c0, dtype=torch.bool, device=device), rest_keys[group, 0]],
                            dim=1)  # [N, c0 + S]
    causal = steps[None, :] <= steps[:, None]  # [width - 1, width - 1]
    allowed = torch.cat([prompt_keys[:, None].expand(-1, width - 1, -1),
                         causal[None].expand(len(prompts), -1, -1)], dim=2)  # [N, width - 1, c0 + S + width - 1]
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    logits, _ = call(body, _additive(allowed, dtype), lengths[:, None] + steps[None], _expanded(cache, group))
    return torch.cat([first, logits], dim=1)


class _Caller:
    """Calls a transformers causal LM on ids with a 4-D additive mask, positions and a cache to continue;
    returns (logits, the cache including ids)."""

    def __init__(self, model):
        self.model = model
        parameters = inspect.signature(model.forward).parameters
        # transformers 5.2x names the cache argument and output `cache`; earlier releases `past_key_values`
        self.cache_name = "cache" if "cache" in parameters else "past_key_values"
        self.keeps = "logits_to_keep" in parameters

    def __call__(self, ids, mask, positions, cache, keep_last: bool = False):
        extra = {"logits_to_keep": 1} if keep_last and self.keeps else {}
        if mask is not None:
            extra["attention_mask"] = mask[:, None]  # [B, 1, Q, K]
        if positions is not None:
            extra["position_ids"] = positions
        if cache is not None:
            extra[self.cache_name] = cache
        out = self.model(input_ids=ids, use_cache=True, **extra)
        logits = out.logits[:, -1:] if keep_last else out.logits
        return logits, getattr(out, self.cache_name)


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean attention pattern as an additive mask (0 / the dtype's minimum): the form both eager and
    SDPA attention take, and finite where a padding query sees nothing."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed,
                                                                                       torch.finfo(dtype).min)


def _expanded(cache, rows: torch.Tensor):
    """A new cache whose row b is row rows[b] of `cache` (keys and values [B, H, P, d]; differentiable)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    layers = []
    for source in cache.layers:
        layer = DynamicLayer()
        layer.lazy_initialization(source.keys, source.values)
        layer.keys, layer.values = source.keys[rows], source.values[rows]
        layers.append(layer)
    out = DynamicCache()
    out.layers = layers
    return out
