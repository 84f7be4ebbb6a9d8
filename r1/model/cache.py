"""The compressed KV cache of MLA: per layer and token, the normed latent and the rotated shared rope key.

That is all MLA needs to attend (keys and values are up-projections of the latent), so a token costs
(kv_lora_rank + qk_rope_head_dim) x layers x dtype bytes, against 2 x heads x head_dim x layers for
multi-head attention: 70,272 bytes per token for DeepSeek-V3 in bf16, where its MHA equivalent would need
~4 MiB. Choices: one contiguous [B, T, C] tensor per layer, grown by concatenation (the CPU engine's batches
are small; the paged variant belongs to the engine), and the token index in the cache is the key's index
for masking.
"""

from __future__ import annotations

import torch


class LatentCache:
    """``cache.append(layer, entry)`` stores [B, S, C] entries and returns all of that layer's, [B, T, C]."""

    def __init__(self, num_layers: int):
        self.entries: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        """Tokens cached (layer 0's count; every layer holds the same once a forward pass is done)."""
        first = self.entries[0]
        return 0 if first is None else first.shape[1]

    def append(self, layer: int, entry: torch.Tensor) -> torch.Tensor:
        held = self.entries[layer]
        self.entries[layer] = entry if held is None else torch.cat([held, entry], dim=1)
        return self.entries[layer]

    def expand(self, batch: int) -> None:
        """Share a batch-1 cache (a common prompt prefix) with `batch` sequences (views, no copy)."""
        self.entries = [None if e is None else e.expand(batch, -1, -1) for e in self.entries]

    def crop(self, length: int) -> None:
        """Keep the first `length` tokens (speculative decoding drops rejected drafts)."""
        self.entries = [None if e is None else e[:, :length] for e in self.entries]

    @property
    def nbytes(self) -> int:
        return sum(e.numel() * e.element_size() for e in self.entries if e is not None)

    def bytes_per_token(self) -> float:
        """Measured: bytes held per cached token per sequence, all layers."""
        first = self.entries[0]
        if first is None:
            return 0.0
        return self.nbytes / (first.shape[0] * first.shape[1])
