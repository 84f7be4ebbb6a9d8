"""The DeepSeek-V3 causal LM in torch: MLA attention, DeepSeekMoE feed-forward, Multi-Token Prediction.

`DeepSeekV3ForCausalLM(config)` has the module tree of transformers' `DeepseekV3ForCausalLM` for the main
model (`model.embed_tokens`, `model.layers.{i}.{self_attn,mlp,input_layernorm,post_attention_layernorm}`,
`model.norm`, `lm_head`), so its state dict names are the checkpoint's, plus `mtp.{k}` for the MTP modules,
which `checkpoint.py` writes under `model.layers.{num_hidden_layers + k}` as DeepSeek does.

Forward: `model(input_ids, positions=None, cache=None, key_mask=None, absorbed=None)` returns `Output`
(logits, final hidden states after `model.norm`). With a `LatentCache` the new tokens are appended to it
and attend to everything cached; positions default to their index in the cache. `absorbed=None` picks the
absorbed MLA path for one-token decode steps and the naive one otherwise. `key_mask` ([B, T], 1 = real
token) masks padding.

MTP (DeepSeek-V3 section 2.2): module k (1-based) at position i combines the embedding of token t_{i+k}
with module k-1's hidden state at i (the main model's final hidden state for k = 1):
h'_i = eh_proj([enorm(emb(t_{i+k})); hnorm(h_i)]), then one decoder layer (causal over the shortened
sequence), then `shared_head.norm` and the shared output head predict t_{i+k+1}. Embedding and head are the
main model's. Choice: the main hidden state fed to MTP is the one after `model.norm`, as vLLM's and SGLang's
DeepSeek MTP drafters take it from the target model. `mtp_loss` averages the depths' cross-entropies;
`training_loss` = main CE + lambda * that, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from r1.model.cache import LatentCache
from r1.model.config import DeepSeekV3Config
from r1.model.mla import MLA
from r1.model.moe import MLP, MoE
from r1.model.norm import RMSNorm
from r1.model.rope import attention_factor, cos_sin, inv_freq


class DecoderLayer(nn.Module):
    def __init__(self, config: DeepSeekV3Config, layer: int):
        super().__init__()
        self.self_attn = MLA(config, layer)
        dense = layer < config.first_k_dense_replace
        self.mlp = MLP(config.hidden_size, config.intermediate_size) if dense else MoE(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache=None, absorbed=False) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, absorbed)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    """`model.*` of the checkpoint: embeddings, decoder layers, final norm."""

    def __init__(self, config: DeepSeekV3Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class MTPModule(nn.Module):
    """One MTP depth; its block is a decoder layer numbered after the main model's (a MoE layer)."""

    def __init__(self, config: DeepSeekV3Config, depth: int):
        super().__init__()
        self.enorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.hnorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)
        self.block = DecoderLayer(config, config.num_hidden_layers + depth)
        self.shared_head_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, embeds, hidden, cos, sin, mask, cache=None, absorbed=False) -> torch.Tensor:
        """embeds: embeddings of t_{i+k}; hidden: h^{k-1}_i. Returns h^k_i (before shared_head.norm)."""
        x = self.eh_proj(torch.cat([self.enorm(embeds), self.hnorm(hidden)], dim=-1))
        return self.block(x, cos, sin, mask, cache, absorbed)


@dataclass
class Output:
    logits: torch.Tensor  # [B, S, V]
    hidden: torch.Tensor  # [B, S, D], after model.norm


class DeepSeekV3ForCausalLM(nn.Module):
    def __init__(self, config: DeepSeekV3Config):
        super().__init__()
        self.config = config
        self.model = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.mtp = nn.ModuleList(MTPModule(config, k) for k in range(config.num_nextn_predict_layers))
        self.register_buffer("inv_freq", inv_freq(config), persistent=False)
        self.rope_scale = attention_factor(config)
        self.apply(self._init)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def _init(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)

    def new_cache(self, mtp: bool = False) -> LatentCache:
        """A cache for the main layers (and, with `mtp`, a slot per MTP block after them)."""
        return LatentCache(self.config.num_hidden_layers + (self.config.num_nextn_predict_layers if mtp else 0))

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor | None = None,
                cache: LatentCache | None = None, key_mask: torch.Tensor | None = None,
                absorbed: bool | None = None) -> Output:
        """input_ids: [B, S]. See the module docstring."""
        hidden = self.hidden_states(input_ids, positions, cache, key_mask, absorbed)
        return Output(self.lm_head(hidden), hidden)

    def hidden_states(self, input_ids, positions=None, cache=None, key_mask=None, absorbed=None) -> torch.Tensor:
        batch, seq = input_ids.shape
        past = cache.length if cache is not None else 0
        if positions is None:
            positions = torch.arange(past, past + seq, device=input_ids.device).expand(batch, seq)
        cos, sin = cos_sin(self.inv_freq, positions, self.rope_scale)
        mask = causal_mask(seq, past, key_mask, input_ids.device)
        absorbed = (seq == 1 and cache is not None) if absorbed is None else absorbed
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache, absorbed)
        return self.model.norm(x)

    def mtp_hidden(self, input_ids: torch.Tensor, hidden: torch.Tensor) -> list[torch.Tensor]:
        """Training-time MTP over whole sequences: for depth k (1-based) returns [B, S - k, D], position i
        predicting t_{i+k+1}."""
        outputs, previous = [], hidden
        for k, module in enumerate(self.mtp, start=1):
            seq = input_ids.shape[1] - k
            if seq <= 0:
                break
            positions = torch.arange(seq, device=input_ids.device).expand(input_ids.shape[0], seq)
            cos, sin = cos_sin(self.inv_freq, positions, self.rope_scale)
            embeds = self.model.embed_tokens(input_ids[:, k:])
            previous = module(embeds, previous[:, :seq], cos, sin, causal_mask(seq, 0, None, input_ids.device))
            outputs.append(previous)
        return outputs

    def mtp_logits(self, depth_hidden: torch.Tensor, depth: int) -> torch.Tensor:
        return self.lm_head(self.mtp[depth - 1].shared_head_norm(depth_hidden))


def shared_prefix_loss(model: DeepSeekV3ForCausalLM, prefix: torch.Tensor, suffix_ids: torch.Tensor,
                       suffix_labels: torch.Tensor, mtp_weight: float = 0.3) -> tuple[torch.Tensor, dict[str, float]]:
    """`training_loss` for sequences that all start with the same `prefix` ([P] ids, no loss on it), computed
    with the prefix run once: its latent cache (main layers and the MTP block) is shared by the batch, and
    gradients flow through it once. Equal to `training_loss` on the concatenated sequences (tested); MTP
    depth 1 only. suffix_ids, suffix_labels: [B, S], right-padded, labels -100 where no loss is wanted.
    The R1-Zero system frame is ~100 tokens of every pretraining example: this halves the work."""
    if model.config.num_nextn_predict_layers > 1:
        raise NotImplementedError("shared_prefix_loss trains MTP depth 1 only; use training_loss")
    batch, seq = suffix_ids.shape
    length = prefix.shape[0]
    cache = model.new_cache(mtp=True)
    prefix_hidden = model.hidden_states(prefix[None], cache=cache)  # [1, P, D]
    cache.expand(batch)
    hidden = model.hidden_states(suffix_ids, cache=cache)  # [B, S, D], positions P..P+S-1
    main = next_token_loss(model.lm_head(hidden[:, :-1]), suffix_labels[:, 1:])
    parts = {"main": main.item()}
    if not model.mtp:
        return main, parts
    module, device = model.mtp[0], suffix_ids.device
    # MTP position i pairs h_i with emb(t_{i+1}): positions 0..P-2 are common, P-1.. differ per sequence.
    common = torch.arange(length - 1, device=device)[None]
    cos, sin = cos_sin(model.inv_freq, common, model.rope_scale)
    module(model.model.embed_tokens(prefix[None, 1:]), prefix_hidden[:, :-1], cos, sin,
           causal_mask(length - 1, 0, None, device), cache)
    cache.entries[model.config.num_hidden_layers] = cache.entries[model.config.num_hidden_layers].expand(batch, -1, -1)
    previous = torch.cat([prefix_hidden[:, -1:].expand(batch, -1, -1), hidden[:, :-1]], dim=1)  # h_{P-1..}
    positions = torch.arange(length - 1, length - 1 + seq, device=device).expand(batch, seq)
    cos, sin = cos_sin(model.inv_freq, positions, model.rope_scale)
    depth = module(model.model.embed_tokens(suffix_ids), previous, cos, sin,
                   causal_mask(seq, length - 1, None, device), cache)
    mtp = next_token_loss(model.mtp_logits(depth[:, :-1], 1), suffix_labels[:, 1:])  # i predicts t_{i+2}
    parts["mtp1"] = mtp.item()
    return main + mtp_weight * mtp, parts


def causal_mask(seq: int, past: int, key_mask: torch.Tensor | None, device) -> torch.Tensor:
    """Additive [B or 1, 1, S, past + S] mask: query i (cache index past + i) sees keys 0..past + i that
    `key_mask` ([B, past + S], 1 = real) keeps."""
    total = past + seq
    allowed = torch.ones(seq, total, dtype=torch.bool, device=device).tril(diagonal=past)[None, None]
    if key_mask is not None:
        allowed = allowed & key_mask.bool()[:, None, None, :]
    return torch.zeros(allowed.shape, device=device).masked_fill(~allowed, float("-inf"))


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of logits [B, S, V] against targets [B, S] (already shifted)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore_index)


def training_loss(model: DeepSeekV3ForCausalLM, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                  mtp_weight: float = 0.3) -> tuple[torch.Tensor, dict[str, float]]:
    """Main next-token CE + mtp_weight x mean over depths of the MTP CE (DeepSeek-V3 eq. 25; lambda = 0.3
    early in its pretraining). labels: [B, S] with -100 where no loss is wanted (default: input_ids).
    Returns the loss and its parts."""
    labels = input_ids if labels is None else labels
    out = model(input_ids)
    main = next_token_loss(out.logits[:, :-1], labels[:, 1:])
    parts = {"main": main.item()}
    depths = model.mtp_hidden(input_ids, out.hidden)
    losses = []
    for k, hidden in enumerate(depths, start=1):
        if labels.shape[1] - k - 1 <= 0:
            break
        logits = model.mtp_logits(hidden[:, :-1], k)  # position i predicts t_{i+k+1}
        losses.append(next_token_loss(logits, labels[:, k + 1:]))
        parts[f"mtp{k}"] = losses[-1].item()
    total = main + mtp_weight * torch.stack(losses).mean() if losses else main
    return total, parts
