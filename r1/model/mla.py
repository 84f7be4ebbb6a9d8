"""Multi-head Latent Attention (DeepSeek-V2/V3), with a naive path and an absorbed decode path.

Queries: a low-rank path `q_b_proj(q_a_layernorm(q_a_proj(x)))` (or `q_proj(x)` when q_lora_rank is None),
split per head into a no-rope part and a rope part. Keys and values: `kv_a_proj_with_mqa(x)` gives the latent
(kv_lora_rank, then `kv_a_layernorm`) and one rope key shared by all heads; `kv_b_proj(latent)` gives each
head's no-rope key and value. Only the normed latent and the rotated rope key are cached (`cache.py`).

Two ways to attend, equal up to float rounding (tested):
- naive (training, prefill): up-project every cached latent to per-head keys and values, then ordinary
  attention (`scaled_dot_product_attention`);
- absorbed (decode): fold `kv_b_proj`'s key half into the query and its value half into the output, so
  attention runs against the latents directly and nothing is up-projected per cached token (DeepSeek-V3
  `inference/model.py`, attn_impl "absorb").
The softmax scale is 1/sqrt(qk_head_dim), times YaRN's mscale^2 when YaRN is on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r1.model.cache import LatentCache
from r1.model.config import DeepSeekV3Config, softmax_scale
from r1.model.norm import RMSNorm
from r1.model.rope import rotate


class MLA(nn.Module):
    def __init__(self, config: DeepSeekV3Config, layer: int):
        super().__init__()
        self.config, self.layer = config, layer
        c, heads = config, config.num_attention_heads
        if c.q_lora_rank is None:
            self.q_proj = nn.Linear(c.hidden_size, heads * c.qk_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(c.hidden_size, c.q_lora_rank, bias=c.attention_bias)
            self.q_a_layernorm = RMSNorm(c.q_lora_rank, c.rms_norm_eps)
            self.q_b_proj = nn.Linear(c.q_lora_rank, heads * c.qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim, bias=c.attention_bias)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        self.kv_b_proj = nn.Linear(c.kv_lora_rank, heads * (c.qk_nope_head_dim + c.v_head_dim), bias=False)
        self.o_proj = nn.Linear(heads * c.v_head_dim, c.hidden_size, bias=c.attention_bias)
        self.scale = softmax_scale(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                cache: LatentCache | None = None, absorbed: bool = False) -> torch.Tensor:
        """x: [B, S, D]; cos, sin: [B, S, rope/2]; mask: [B, 1, S, T] additive (0 or -inf) over the T keys
        (the cache's plus these S). Returns [B, S, D]."""
        c = self.config
        q_nope, q_rope = self.queries(x, cos, sin)
        entry = self.latent_entry(x, cos, sin)  # [B, S, C + R]
        if cache is not None:
            entry = cache.append(self.layer, entry)  # [B, T, C + R]
        latent, k_rope = entry.split([c.kv_lora_rank, c.qk_rope_head_dim], dim=-1)
        attend = self._absorbed if absorbed else self._naive
        out = attend(q_nope, q_rope, latent, k_rope, mask)  # [B, S, H, V]
        return self.o_proj(out.flatten(2))

    def queries(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, S, H, nope], [B, S, H, rope] (rotated)."""
        c = self.config
        q = self.q_proj(x) if c.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.unflatten(-1, (c.num_attention_heads, c.qk_head_dim))
        q_nope, q_rope = q.split([c.qk_nope_head_dim, c.qk_rope_head_dim], dim=-1)
        return q_nope, rotate(q_rope, cos, sin)

    def latent_entry(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """What the cache stores for these tokens: [B, S, kv_lora_rank + rope] = [normed latent | rotated key]."""
        c = self.config
        latent, k_rope = self.kv_a_proj_with_mqa(x).split([c.kv_lora_rank, c.qk_rope_head_dim], dim=-1)
        return torch.cat([self.kv_a_layernorm(latent), rotate(k_rope, cos, sin)], dim=-1)

    def _naive(self, q_nope, q_rope, latent, k_rope, mask) -> torch.Tensor:
        c = self.config
        kv = self.kv_b_proj(latent).unflatten(-1, (c.num_attention_heads, -1))  # [B, T, H, nope + V]
        k_nope, v = kv.split([c.qk_nope_head_dim, c.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_rope[:, :, None, :].expand(-1, -1, c.num_attention_heads, -1)], dim=-1)
        q = torch.cat([q_nope, q_rope], dim=-1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask.to(q.dtype), scale=self.scale)  # [B, H, S, V]
        return out.transpose(1, 2)

    def _absorbed(self, q_nope, q_rope, latent, k_rope, mask) -> torch.Tensor:
        c = self.config
        w = self.kv_b_proj.weight.unflatten(0, (c.num_attention_heads, -1))  # [H, nope + V, C]
        w_uk, w_uv = w.split([c.qk_nope_head_dim, c.v_head_dim], dim=1)
        q_latent = torch.einsum("bshd,hdc->bshc", q_nope, w_uk)  # [B, S, H, C]
        scores = (torch.einsum("bshc,btc->bhst", q_latent, latent)
                  + torch.einsum("bshr,btr->bhst", q_rope, k_rope)) * self.scale + mask
        weights = scores.float().softmax(dim=-1).to(q_nope.dtype)  # [B, H, S, T]
        out_latent = torch.einsum("bhst,btc->bshc", weights, latent)
        return torch.einsum("bshc,hvc->bshv", out_latent, w_uv)  # [B, S, H, V]
