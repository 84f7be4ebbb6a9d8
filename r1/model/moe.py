"""DeepSeekMoE: shared experts plus fine-grained routed experts, with auxiliary-loss-free load balancing.

Routing (`route`, DeepSeek-V3 section 2.1.2, `noaux_tc` in its config):
1. scores = sigmoid(x W_gate^T), in float32;
2. for *selection only*, add the per-expert `e_score_correction_bias`;
3. group-limited: a group's score is the sum of its two best biased scores; keep the `topk_group` best
   groups, mask the others' experts to -inf;
4. take the top `num_experts_per_tok` experts by biased score;
5. their weights are the *unbiased* scores, normalised to sum 1 (norm_topk_prob), times
   routed_scaling_factor.
The output is the shared experts' SwiGLU plus the weighted sum of the chosen experts' SwiGLUs.

Balancing without an auxiliary loss: each MoE layer counts the tokens each expert received (`load`, summed
over forward passes until read); `update_routing_bias` moves every bias by a fixed `speed` against its
expert's load error (down when above the mean load, up when below), which the trainer calls once per step.
The first `first_k_dense_replace` layers use a dense SwiGLU instead (`MLP`).

Inference on a few tokens (a decode step) can use packed experts: `pack_experts(model)` stacks each layer's
expert weights once, and a forward pass without gradients whose tokens x experts-per-token is at most
`PACKED_LIMIT` gathers the chosen experts' weights and runs them as three batched contractions instead of a
loop over experts (`packed_experts`). The same sums, in a different order: equal up to float rounding. The
engine packs at load and again after every weight update; training never uses it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r1.model.config import DeepSeekV3Config

PACKED_LIMIT = 64  # tokens x experts per token up to which packed experts run (decode steps)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)). Dense layers, experts and shared experts alike."""

    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def route(scores: torch.Tensor, bias: torch.Tensor, n_group: int, topk_group: int, top_k: int,
          normalize: bool, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """scores: [N, E] sigmoid scores; bias: [E]. Returns (weights [N, k], expert indices [N, k])."""
    n, experts = scores.shape
    biased = scores + bias  # [N, E], for choosing only
    grouped = biased.view(n, n_group, experts // n_group)  # [N, G, E/G]
    group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)  # [N, G]
    kept_groups = group_scores.topk(topk_group, dim=-1).indices  # [N, topk_group]
    group_mask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, kept_groups, True)
    expert_mask = group_mask[:, :, None].expand_as(grouped).reshape(n, experts)  # [N, E]
    indices = biased.masked_fill(~expert_mask, float("-inf")).topk(top_k, dim=-1).indices  # [N, k]
    weights = scores.gather(1, indices)  # unbiased
    if normalize:
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return weights * scaling, indices


class Router(nn.Module):
    """The `gate` of a MoE layer: weight [E, D] and the selection bias [E] (a float32 buffer, saved)."""

    def __init__(self, config: DeepSeekV3Config):
        super().__init__()
        self.config = config
        self.weight = nn.Parameter(torch.empty(config.n_routed_experts, config.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.zeros(config.n_routed_experts, dtype=torch.float32))
        nn.init.normal_(self.weight, std=config.initializer_range)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [N, D] -> weights [N, k] (float32), indices [N, k]."""
        c = self.config
        scores = F.linear(x.float(), self.weight.float()).sigmoid()  # [N, E]
        return route(scores, self.e_score_correction_bias, c.n_group, c.topk_group, c.num_experts_per_tok,
                     c.norm_topk_prob, c.routed_scaling_factor)


class MoE(nn.Module):
    """Shared experts + routed experts. `load` counts tokens per expert since it was last reset."""

    def __init__(self, config: DeepSeekV3Config):
        super().__init__()
        self.config = config
        self.gate = Router(config)
        self.experts = nn.ModuleList(MLP(config.hidden_size, config.moe_intermediate_size)
                                     for _ in range(config.n_routed_experts))
        self.shared_experts = MLP(config.hidden_size, config.moe_intermediate_size * config.n_shared_experts)
        self.register_buffer("load", torch.zeros(config.n_routed_experts), persistent=False)
        self.packed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def pack(self) -> None:
        """Stack the experts' weights (gate, up [E, I, D]; down [E, D, I]) for `packed_experts`."""
        self.packed = tuple(torch.stack([getattr(e, name).weight.detach() for e in self.experts])
                            for name in ("gate_proj", "up_proj", "down_proj"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])  # [N, D]
        weights, indices = self.gate(flat)
        with torch.no_grad():
            self.load += torch.bincount(indices.flatten(), minlength=self.config.n_routed_experts).to(self.load)
        if self.packed is not None and indices.numel() <= PACKED_LIMIT and not torch.is_grad_enabled():
            routed = packed_experts(flat, weights, indices, *self.packed)
        else:
            routed = torch.zeros_like(flat)
            for expert in indices.unique().tolist():
                token, slot = (indices == expert).nonzero(as_tuple=True)
                out = self.experts[expert](flat[token]) * weights[token, slot, None].to(flat.dtype)
                routed.index_add_(0, token, out)
        return (routed + self.shared_experts(flat)).reshape(shape)


def packed_experts(x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, gate: torch.Tensor,
                   up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """The routed experts' weighted SwiGLUs with gathered weights. x [N, D]; weights, indices [N, k];
    gate, up [E, I, D]; down [E, D, I]. Returns [N, D]."""
    hidden = (F.silu(torch.einsum("nd,nkid->nki", x, gate[indices]))
              * torch.einsum("nd,nkid->nki", x, up[indices]))  # [N, k, I]
    out = torch.einsum("nki,nkdi->nkd", hidden, down[indices])  # [N, k, D]
    return (out * weights[..., None].to(x.dtype)).sum(dim=1)


def pack_experts(model: nn.Module) -> None:
    """`MoE.pack` for every MoE layer: call after loading and after the weights change."""
    for module in model.modules():
        if isinstance(module, MoE):
            module.pack()


def bias_update(bias: torch.Tensor, load: torch.Tensor, speed: float) -> torch.Tensor:
    """The new selection bias: each expert's bias moves by `speed` against its load error (overloaded:
    down, underloaded: up, exactly at the mean: unchanged). DeepSeek-V3 section 2.1.2, gamma = speed."""
    return bias - speed * torch.sign(load.float() - load.float().mean())


@torch.no_grad()
def update_routing_bias(model: nn.Module, speed: float = 1e-3) -> dict[str, torch.Tensor]:
    """Applies `bias_update` to every MoE layer of `model` with the load counted since the last call, resets
    the counts, and returns the loads it used (name -> [E]), for logging."""
    loads = {}
    for name, module in model.named_modules():
        if isinstance(module, MoE) and module.load.sum() > 0:
            loads[name] = module.load.clone()
            bias = module.gate.e_score_correction_bias
            bias.copy_(bias_update(bias, module.load, speed))
            module.load.zero_()
    return loads


def load_imbalance(load: torch.Tensor) -> float:
    """max load / mean load (1.0 is perfect balance)."""
    mean = load.float().mean()
    return float(load.float().max() / mean) if mean > 0 else 0.0
