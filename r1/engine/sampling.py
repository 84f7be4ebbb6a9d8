"""Sampling maths for the torch engine: logit processors, per-sample draws, speculative acceptance.

Small pure functions over a batch of rows (one row per sample and position). The order is vLLM's:
penalties on the raw logits (repetition: divide positive logits / multiply negative ones by the penalty, for
tokens seen in the prompt or completion; presence and frequency: subtract, for completion tokens), the
`min_tokens` mask on stop tokens, then temperature, then top-k, top-p and min-p truncation, then softmax.
Greedy rows (temperature 0) take the argmax of the penalised logits; truncation does not apply to them.

Speculative decoding (`accept_drafts`) follows Leviathan et al. 2023 / Chen et al. 2023: draft token d_i
from q_i is kept with probability min(1, p_i(d_i) / q_i(d_i)); the first rejection is replaced by a draw
from norm(max(p_i - q_i, 0)); when every draft is kept, a bonus token is drawn from p_{k+1}. The output
is distributed exactly as sampling from p alone. Greedy rows keep drafts while they equal argmax p_i and
end on argmax, so their output is token-for-token plain greedy decoding.

Every draw takes the sample's own `torch.Generator`, so a seeded sample reproduces whatever else shares the
batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from r1.engine.types import SamplingParams


@dataclass(frozen=True)
class RowSettings:
    """The per-row knobs of a batch, as tensors [R] (R rows), built once per step by `row_settings`."""

    temperature: torch.Tensor  # [R] float, 0 = greedy
    top_k: torch.Tensor  # [R] long, 0 = off
    top_p: torch.Tensor  # [R] float
    min_p: torch.Tensor  # [R] float

    @property
    def greedy(self) -> torch.Tensor:  # [R] bool
        return self.temperature == 0


def row_settings(params: Sequence[SamplingParams]) -> RowSettings:
    return RowSettings(temperature=torch.tensor([p.temperature for p in params], dtype=torch.float32),
                       top_k=torch.tensor([p.top_k for p in params], dtype=torch.long),
                       top_p=torch.tensor([p.top_p for p in params], dtype=torch.float32),
                       min_p=torch.tensor([p.min_p for p in params], dtype=torch.float32))


def apply_penalties(logits: torch.Tensor, seen: torch.Tensor, completion_counts: torch.Tensor,
                    repetition: torch.Tensor, presence: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
    """logits [R, V]; seen [R, V] bool (token in prompt or completion); completion_counts [R, V] (occurrences
    in the completion); repetition, presence, frequency [R]. Returns new logits [R, V]."""
    rep = repetition[:, None]
    penalised = torch.where(logits > 0, logits / rep, logits * rep)
    logits = torch.where(seen, penalised, logits)
    counts = completion_counts.to(logits.dtype)
    return logits - frequency[:, None] * counts - presence[:, None] * (counts > 0).to(logits.dtype)


def mask_tokens(logits: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
    """logits [R, V] with -inf where banned [R, V] (stop tokens before min_tokens)."""
    return logits.masked_fill(banned, float("-inf"))


def probabilities(logits: torch.Tensor, settings: RowSettings) -> torch.Tensor:
    """The distribution each row samples from, [R, V] float32: temperature, then top-k, top-p, min-p. Greedy
    rows get a one-hot on the argmax, so speculative acceptance treats them exactly."""
    logits = logits.float()
    greedy = settings.greedy
    scaled = logits / torch.where(greedy, torch.ones_like(settings.temperature), settings.temperature)[:, None]
    scaled = top_k_filter(scaled, settings.top_k)
    scaled = top_p_filter(scaled, settings.top_p)
    probs = scaled.softmax(dim=-1)
    probs = min_p_filter(probs, settings.min_p)
    if greedy.any():
        one_hot = torch.zeros_like(probs).scatter_(1, logits.argmax(dim=-1, keepdim=True), 1.0)
        probs = torch.where(greedy[:, None], one_hot, probs)
    return probs


def top_k_filter(logits: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    """Keep each row's top_k logits (ties at the k-th value kept), -inf elsewhere; top_k 0 = all."""
    vocab = logits.shape[-1]
    k = torch.where(top_k <= 0, torch.full_like(top_k, vocab), top_k.clamp(max=vocab))
    if bool((k >= vocab).all()):
        return logits
    kth = logits.sort(dim=-1, descending=True).values.gather(1, (k - 1)[:, None])  # [R, 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches top_p (the token that crosses
    it included); top_p 1 = all."""
    if bool((top_p >= 1).all()):
        return logits
    ordered, order = logits.sort(dim=-1, descending=True)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    drop = (cumulative - ordered.softmax(dim=-1)) >= top_p[:, None]  # mass before this token already enough
    drop[:, 0] = False
    return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def min_p_filter(probs: torch.Tensor, min_p: torch.Tensor) -> torch.Tensor:
    """Zero the tokens below min_p x the row's top probability, renormalised; min_p 0 = all."""
    if bool((min_p <= 0).all()):
        return probs
    keep = probs >= min_p[:, None] * probs.max(dim=-1, keepdim=True).values
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)


def draw(probs: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One token per row [R] from probs [R, V], each row with its own generator."""
    return torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(probs, generators)])


def accept_greedy(drafts: torch.Tensor, target: torch.Tensor) -> tuple[list[int], list[int]]:
    """Greedy acceptance for a batch: drafts [B, k] against the target argmax [B, k + 1]. Returns, per row, how
    many leading drafts equal the target, and the target token that follows them."""
    matches = (drafts == target[:, :-1]).long().cumprod(dim=1).sum(dim=1)  # [B]
    following = target.gather(1, matches[:, None]).squeeze(1)
    return matches.tolist(), following.tolist()


def accept_drafts(drafts: torch.Tensor, draft_probs: torch.Tensor, target_probs: torch.Tensor,
                  generator: torch.Generator) -> tuple[int, int]:
    """One sample's speculative step. drafts [k]; draft_probs [k, V] (q_i, what each draft was drawn from);
    target_probs [k + 1, V] (p_i at the same positions, then the bonus position). Returns (accepted count a,
    the token that follows the a kept drafts). Greedy rows pass one-hot p and q: drafts are then kept while
    they are p's argmax, and the next token is argmax p_{a+1}."""
    k = drafts.shape[0]
    for i in range(k):
        token = int(drafts[i])
        p, q = float(target_probs[i, token]), float(draft_probs[i, token])
        if q > 0 and torch.rand((), generator=generator).item() * q < p:
            continue  # kept, with probability min(1, p / q)
        residual = (target_probs[i] - draft_probs[i]).clamp(min=0)
        total = residual.sum()
        residual = residual / total if total > 0 else target_probs[i]
        return i, int(torch.multinomial(residual, 1, generator=generator))
    return k, int(torch.multinomial(target_probs[k], 1, generator=generator))
