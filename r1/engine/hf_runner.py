"""Runs a transformers causal LM (the Qwen2 / Llama students) for the engine, on the same slot cache.

Same contract as `TeacherRunner` without speculation: prefill once per request into its n slots, then
ragged batched decode. Each attention layer's keys and values live in two slot buffers (heads x head_dim
flattened); a step gathers the running slots to the longest length into a `DynamicCache`, passes a 2-D
attention mask that hides each slot's stale tail and each sample's own positions, and writes the new key and
value of every sample back at its length. transformers builds the causal mask from the cache length and the
padding mask, so a sample decodes exactly as it would alone.

Not done: sliding-window layers (Qwen2's `use_sliding_window`, off in its released configs) and models whose
cache is not plain keys/values (Mamba, MLA in transformers' own DeepSeek: ours runs in `TeacherRunner`).
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache

from r1.engine.slots import SlotCache


class HFRunner:
    spec_tokens = 0

    def __init__(self, model, max_slots: int, max_context: int, device: torch.device | str = "cpu"):
        config = model.config
        if getattr(config, "use_sliding_window", False):
            raise ValueError("sliding-window attention is not supported by the torch engine's student runner")
        self.model, self.device = model, torch.device(device)
        self.layers = config.num_hidden_layers
        self.heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dtype = next(model.parameters()).dtype
        width = self.heads * self.head_dim
        self.keys = SlotCache(self.layers, width, max_slots, max_context + 1, dtype, self.device)
        self.values = SlotCache(self.layers, width, max_slots, max_context + 1, dtype, self.device)
        self.length = torch.zeros(max_slots, dtype=torch.long)
        # transformers 5.2x names the cache argument and output `cache`; earlier releases `past_key_values`
        self._cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def weights_changed(self) -> None:
        """Nothing derived from the weights is kept."""

    @property
    def free_slots(self) -> int:
        return self.keys.free_slots

    def allocate(self) -> int:
        slot = self.keys.allocate()
        self.values.allocate()
        return slot

    def release(self, slot: int) -> None:
        self.keys.free(slot)
        self.values.free(slot)
        self.length[slot] = 0

    def cache_bytes(self, slots: list[int]) -> int:
        return int(self.length[slots].sum()) * (self.keys.bytes_per_token() + self.values.bytes_per_token())

    @torch.no_grad()
    def prefill(self, prompt: list[int], slots: list[int]) -> torch.Tensor:
        out = self.model(input_ids=torch.tensor([prompt], device=self.device), use_cache=True)
        for layer in range(self.layers):
            key, value = self._layer(getattr(out, self._cache_name), layer)  # [1, H, P, d]
            self.keys.copy_prefix(layer, _flat(key)[0], slots)
            self.values.copy_prefix(layer, _flat(value)[0], slots)
        self.length[slots] = len(prompt)
        return out.logits[0, -1].float()

    @torch.no_grad()
    def decode(self, slots: list[int], tokens: torch.Tensor) -> torch.Tensor:
        rows = torch.tensor(slots)
        starts = self.length[rows]
        batch, past = len(slots), int(starts.max())
        cache = DynamicCache(ddp_cache_data=[
            (self._heads(self.keys.gather(layer, rows, past)), self._heads(self.values.gather(layer, rows, past)))
            for layer in range(self.layers)])
        mask = torch.cat([torch.arange(past)[None] < starts[:, None], torch.ones(batch, 1, dtype=torch.bool)], dim=1)
        out = self.model(input_ids=tokens[:, None].to(self.device), attention_mask=mask.long().to(self.device),
                         position_ids=starts[:, None].to(self.device), use_cache=True, **{self._cache_name: cache})
        for layer in range(self.layers):
            key, value = self._layer(getattr(out, self._cache_name), layer)
            self.keys.write(layer, rows, starts, _flat(key[:, :, past:]))
            self.values.write(layer, rows, starts, _flat(value[:, :, past:]))
        self.length[rows] = starts + 1
        return out.logits[:, -1].float()

    def _heads(self, flat: torch.Tensor) -> torch.Tensor:
        """[B, T, H * d] -> [B, H, T, d]"""
        return flat.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    @staticmethod
    def _layer(cache, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        entry = cache.layers[layer]
        return entry.keys, entry.values


def _flat(heads: torch.Tensor) -> torch.Tensor:
    """[B, H, T, d] -> [B, T, H * d]"""
    return heads.transpose(1, 2).flatten(2)
