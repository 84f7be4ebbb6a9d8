"""Group-relative advantages: what GRPO uses instead of a critic, and the reward shaping around it.

For each prompt, G completions are sampled and rewarded; a completion's advantage is its reward against its
group's (DeepSeekMath, Shao et al. 2024, section 4.1.2, outcome supervision). Variants, one function each:
- `grpo_advantages`: (r - mean) / (std + eps), std with Bessel's correction, as TRL's GRPOTrainer computes
  it (`rewards.view(-1, G).std(dim=1)`), so losses agree with it on the same rewards;
- `centred_advantages`: r - mean, no std division (Dr. GRPO, Liu et al. 2025: the std term up-weights
  groups that are nearly all right or all wrong);
- `zero_variance_groups`: groups whose rewards are all equal carry no signal (every advantage is 0): DAPO's
  dynamic sampling drops them and samples more prompts (Yu et al. 2025, section 3.2);
- `overlong_penalty`: DAPO's soft overlong punishment (section 3.4), added to the reward.
Rewards come flat, group after group: [P * G], P prompts of G samples each.
"""

from __future__ import annotations

import torch


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.float().view(-1, group_size)  # [P, G]


def grpo_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """[P * G] rewards -> [P * G] advantages (r - mean) / (std + eps), per group."""
    grouped = _grouped(rewards, group_size)
    std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(grouped[:, :1])
    return ((grouped - grouped.mean(dim=1, keepdim=True)) / (std + eps)).view(-1)


def centred_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[P * G] rewards -> [P * G] advantages r - mean, per group (Dr. GRPO)."""
    grouped = _grouped(rewards, group_size)
    return (grouped - grouped.mean(dim=1, keepdim=True)).view(-1)


def zero_variance_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[P] bool: the groups whose G rewards are all equal."""
    grouped = _grouped(rewards, group_size)
    return (grouped == grouped[:, :1]).all(dim=1)


def overlong_penalty(lengths: torch.Tensor, max_length: int, buffer: int) -> torch.Tensor:
    """DAPO's soft penalty for completion lengths [N]: 0 up to max_length - buffer, then falling linearly to
    -1 at max_length, -1 beyond."""
    if not 0 < buffer <= max_length:
        raise ValueError(f"buffer must be in (0, max_length = {max_length}], got {buffer}")
    start = max_length - buffer
    penalty = (start - lengths.float()) / buffer
    return torch.where(lengths <= start, torch.zeros_like(penalty), penalty.clamp(min=-1.0))
