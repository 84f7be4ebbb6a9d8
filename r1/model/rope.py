"""Rotary position embedding on the rope part of queries and keys, with YaRN, as DeepSeek-V3 applies it.

`inv_freq(config)`: the per-pair inverse frequencies (YaRN-blended when `rope_scaling` is set, following
transformers' `_compute_yarn_parameters` and DeepSeek's `precompute_freqs_cis`: extrapolate the fast
dimensions, interpolate the slow ones by `factor`, ramp between the correction range); `cos_sin` gives the
angles at given positions, times YaRN's attention factor mscale(factor, mscale)/mscale(factor,
mscale_all_dim) (1 for DeepSeek-V3's published settings); `rotate` turns interleaved pairs (x0, x1),
(x2, x3), ... each by its angle, in place of layout, as DeepSeek's reference `apply_rotary_emb` does.
Positions are explicit per token, so sequences at different offsets (a cache, continuous batching) share
one call.
"""

from __future__ import annotations

import math

import torch

from r1.model.config import DeepSeekV3Config, yarn_mscale


def inv_freq(config: DeepSeekV3Config) -> torch.Tensor:
    """[qk_rope_head_dim // 2] inverse frequencies, float32."""
    dim, base = config.qk_rope_head_dim, config.rope_theta
    exponents = torch.arange(0, dim, 2, dtype=torch.float32) / dim
    extrapolated = 1.0 / (base ** exponents)
    yarn = config.rope_scaling
    if yarn is None:
        return extrapolated
    factor = float(yarn["factor"])
    interpolated = extrapolated / factor
    low, high = _correction_range(yarn.get("beta_fast") or 32, yarn.get("beta_slow") or 1, dim, base,
                                  yarn["original_max_position_embeddings"])
    keep = 1 - _linear_ramp(low, high, dim // 2)  # 1: extrapolate (fast dims), 0: interpolate (slow dims)
    return interpolated * (1 - keep) + extrapolated * keep


def attention_factor(config: DeepSeekV3Config) -> float:
    """The factor YaRN puts on cos and sin."""
    yarn = config.rope_scaling
    if yarn is None:
        return 1.0
    factor, mscale, mscale_all = yarn["factor"], yarn.get("mscale"), yarn.get("mscale_all_dim")
    if mscale and mscale_all:
        return yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all)
    return yarn_mscale(factor)


def cos_sin(frequencies: torch.Tensor, positions: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position x frequency: [..., S] positions -> two [..., S, dim // 2] tensors."""
    angles = positions.to(torch.float32)[..., None] * frequencies  # [..., S, D/2]
    return angles.cos() * scale, angles.sin() * scale


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates interleaved pairs of the last dim. x: [B, S, H, D] (or [B, S, D]); cos, sin: [B, S, D/2]."""
    if x.dim() == 4:
        cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    pairs = x.float().unflatten(-1, (-1, 2))  # [..., D/2, 2]
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)


def _correction_range(fast: float, slow: float, dim: int, base: float, original: int) -> tuple[int, int]:
    def dim_for(rotations: float) -> float:
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    return max(math.floor(dim_for(fast)), 0), min(math.ceil(dim_for(slow)), dim - 1)


def _linear_ramp(low: float, high: float, n: int) -> torch.Tensor:
    if low == high:
        high += 0.001
    return ((torch.arange(n, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
