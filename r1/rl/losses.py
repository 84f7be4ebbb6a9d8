"""Policy losses for GRPO and its variants: small pure functions over completion tokens, one per variant.

Shapes: `logprobs` [N, T] log-probabilities of the sampled completion tokens under the policy being trained
(N = prompts x G completions, T = the longest completion), `old_logprobs` [N, T] under the policy that
sampled them (equal to logprobs.detach() on the first of mu inner updates), `ref_logprobs` [N, T] under the
frozen reference, `advantages` [N] (one per completion, `advantages.py`), `mask` [N, T] (1 on completion
tokens, 0 on padding).

- `grpo_loss`: DeepSeekMath eq. 3: the clipped surrogate minus beta x KL per token, averaged over each
  sequence's tokens, then over sequences. KL is the k3 estimator exp(r - l) - (r - l) - 1 (unbiased,
  always >= 0). TRL's GRPOTrainer computes the same with loss_type="grpo".
- `dapo_loss`: DAPO (Yu et al. 2025): clip-higher (epsilon_low < epsilon_high, so unlikely tokens can gain
  more), token-level mean over every token of the batch (long completions are not down-weighted), no KL
  unless beta is set.
- `dr_grpo_loss`: Dr. GRPO (Liu et al. 2025): token sums divided by one constant (N x max_tokens, the
  generation budget) instead of each sequence's length, with mean-centred advantages: no length bias.
Diagnostics: `clip_fraction` (share of tokens whose gradient the clip removed) and `token_entropy`.
Every loss is to be minimised; signs are handled here.
"""

from __future__ import annotations

import torch


def probability_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """pi / pi_old per token, [N, T]."""
    return torch.exp(logprobs - old_logprobs)


def clipped_objective(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                      epsilon_low: float, epsilon_high: float) -> torch.Tensor:
    """PPO's per-token objective (to maximise), [N, T]: min(ratio x A, clip(ratio, 1 - eps_low, 1 + eps_high) x A)."""
    ratio = probability_ratio(logprobs, old_logprobs)
    advantage = advantages[:, None]  # [N, 1]
    clipped = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
    return torch.minimum(ratio * advantage, clipped * advantage)


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(pi || pi_ref) per token, [N, T]: exp(ref - logp) - (ref - logp) - 1."""
    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1


def sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's masked tokens, [N] (an all-padding row gives 0)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over every masked token of the batch, a scalar."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def _per_token_loss(logprobs, old_logprobs, ref_logprobs, advantages, epsilon_low, epsilon_high, beta):
    loss = -clipped_objective(logprobs, old_logprobs, advantages, epsilon_low, epsilon_high)  # [N, T]
    if beta:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs (the frozen reference's log-probabilities)")
        loss = loss + beta * kl_k3(logprobs, ref_logprobs)
    return loss


def grpo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, epsilon: float = 0.2, beta: float = 0.04) -> torch.Tensor:
    """DeepSeekMath's GRPO objective, negated: per-sequence token means, then the mean over sequences."""
    per_token = _per_token_loss(logprobs, old_logprobs, ref_logprobs, advantages, epsilon, epsilon, beta)
    return sequence_mean(per_token, mask).mean()


def dapo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              epsilon_low: float = 0.2, epsilon_high: float = 0.28, ref_logprobs: torch.Tensor | None = None,
              beta: float = 0.0) -> torch.Tensor:
    """DAPO: clip-higher and a token-level mean over the whole batch."""
    per_token = _per_token_loss(logprobs, old_logprobs, ref_logprobs, advantages, epsilon_low, epsilon_high, beta)
    return token_mean(per_token, mask)


def dr_grpo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                 max_tokens: int, epsilon: float = 0.2, ref_logprobs: torch.Tensor | None = None,
                 beta: float = 0.0) -> torch.Tensor:
    """Dr. GRPO: the masked token sum over N x max_tokens (a constant), no per-sequence length division."""
    per_token = _per_token_loss(logprobs, old_logprobs, ref_logprobs, advantages, epsilon, epsilon, beta)
    return (per_token * mask.to(per_token.dtype)).sum() / (logprobs.shape[0] * max_tokens)


def clip_fraction(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  epsilon_low: float, epsilon_high: float) -> float:
    """Share of masked tokens where the clip is active: ratio above 1 + eps_high with A > 0, or below
    1 - eps_low with A < 0 (those tokens get no gradient)."""
    ratio = probability_ratio(logprobs, old_logprobs)
    advantage = advantages[:, None]
    clipped = ((ratio > 1 + epsilon_high) & (advantage > 0)) | ((ratio < 1 - epsilon_low) & (advantage < 0))
    return float(token_mean(clipped.float(), mask))


def token_entropy(logits: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean entropy (nats) of the policy's next-token distributions over masked positions; logits [N, T, V]."""
    logp = logits.float().log_softmax(dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)  # [N, T]
    return float(token_mean(entropy, mask))
