"""Parameter counts of a config, from the model itself built on the meta device (no memory used).

- main: the main model (embedding, layers, final norm, output head): DeepSeek-V3's "671B".
- with_mtp: main plus the MTP modules as the checkpoint stores them, each with its own copy of the embedding
  and output head (DeepSeek-V3's "685B", of which "14B" MTP).
- activated: what one token's forward pass uses: everything but the routed experts it is not sent to
  (num_experts_per_tok of n_routed_experts in each MoE layer), embedding row and output head included.
- activated_without_embedding: the same without the embedding table (a lookup, not a matmul).
DeepSeek-V3's "37B activated" lies between the last two (37.55B and 36.63B): its paper does not say which
parameters it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1.model.config import DeepSeekV3Config
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM


@dataclass(frozen=True)
class ParameterCounts:
    main: int
    mtp: int
    with_mtp: int
    activated: int
    activated_without_embedding: int


def parameter_counts(config: DeepSeekV3Config) -> ParameterCounts:
    with torch.device("meta"):
        model = DeepSeekV3ForCausalLM(config)
    mtp = sum(p.numel() for p in model.mtp.parameters())
    main = sum(p.numel() for p in model.parameters()) - mtp
    embedding = config.vocab_size * config.hidden_size
    stored_mtp = mtp + config.num_nextn_predict_layers * 2 * embedding
    expert = 3 * config.hidden_size * config.moe_intermediate_size
    idle = len(config.moe_layers) * (config.n_routed_experts - config.num_experts_per_tok) * expert
    return ParameterCounts(main=main, mtp=stored_mtp, with_mtp=main + stored_mtp, activated=main - idle,
                           activated_without_embedding=main - idle - embedding)
