"""Runs a transformers causal LM (the Qwen2 / Llama students) for the engine: prefill, then ragged batched decode.

Same contract as `TeacherRunner` without speculation: prefill once per request into its n slots, then one
token per running sample per step. The keys and values live in preallocated buffers, one pair per attention
layer, shaped [rows, kv heads, capacity, head_dim] (the layout attention reads). Slots are the engine's
handles; each maps to a physical row, and the rows in use are kept packed at the front (`release` moves the
last row into the freed one: one row's entries copied, once per finished sample). A decode step over every
running sample (what the engine always asks for) therefore reads the buffers as views, rows 0..B-1 up to the
longest length: nothing is gathered or concatenated per step. The step's new key and value are written in
place at each sample's own length (`_SlotLayer`, a transformers cache layer over the buffers), a 4-D mask
hides each row's stale tail (entries past its length), and positions are each sample's own, so a sample
decodes exactly as it would alone. Decoding a subset of the slots (not something the engine does) gathers
their rows instead, with the same results. Capacity grows by doubling up to the context window.

Not done: sliding-window layers (Qwen2's `use_sliding_window`, off in its released configs), models whose
cache is not plain keys/values (Mamba, MLA in transformers' own DeepSeek: ours runs in `TeacherRunner`),
batched prefill of several requests, paging.
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from r1.engine.slots import doubled_capacity
from r1.errors import ResourceExhausted


class HFRunner:
    spec_tokens = 0

    def __init__(self, model, max_slots: int, max_context: int, device: torch.device | str = "cpu",
                 initial_capacity: int = 256):
        config = model.config
        if getattr(config, "use_sliding_window", False):
            raise ValueError("sliding-window attention is not supported by the torch engine's student runner")
        self.model, self.device = model, torch.device(device)
        self.layers = config.num_hidden_layers
        self.heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.dtype = next(model.parameters()).dtype
        self.max_slots, self.max_capacity = max_slots, max_context + 1
        self.capacity = min(initial_capacity, self.max_capacity)
        self.keys = [self._buffer(self.capacity) for _ in range(self.layers)]  # [rows, H, capacity, d]
        self.values = [self._buffer(self.capacity) for _ in range(self.layers)]
        self.lengths = torch.zeros(max_slots, dtype=torch.long)  # per physical row
        self.row_of = torch.full((max_slots,), -1, dtype=torch.long)  # slot -> physical row
        self.slot_at: list[int] = []  # physical row -> slot, rows 0..live-1
        self._free = list(range(max_slots - 1, -1, -1))
        parameters = inspect.signature(model.forward).parameters
        # transformers 5.2x names the cache argument and output `cache`; earlier releases `past_key_values`
        self._cache_name = "cache" if "cache" in parameters else "past_key_values"
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}

    def weights_changed(self) -> None:
        """Nothing derived from the weights is kept."""

    # ------------------------------------------------------------------------------------------ bookkeeping

    @property
    def free_slots(self) -> int:
        return len(self._free)

    @property
    def live(self) -> int:
        return len(self.slot_at)

    def allocate(self) -> int:
        if not self._free:
            raise ResourceExhausted(f"all {self.max_slots} cache slots are in use")
        slot = self._free.pop()
        self.row_of[slot] = self.live
        self.lengths[self.live] = 0
        self.slot_at.append(slot)
        return slot

    def release(self, slot: int) -> None:
        """Frees the slot; the last row in use moves into its row, so the rows in use stay packed."""
        row, last = int(self.row_of[slot]), self.live - 1
        if row != last:
            length = int(self.lengths[last])
            for buffers in (self.keys, self.values):
                for buffer in buffers:
                    buffer[row, :, :length] = buffer[last, :, :length]
            self.lengths[row] = length
            moved = self.slot_at[last]
            self.slot_at[row], self.row_of[moved] = moved, row
        self.slot_at.pop()
        self.lengths[last] = 0
        self.row_of[slot] = -1
        self._free.append(slot)

    def cache_bytes(self, slots: list[int]) -> int:
        per_token = 2 * self.layers * self.heads * self.head_dim * self.keys[0].element_size()
        return int(self.lengths[self.row_of[slots]].sum()) * per_token

    def _buffer(self, capacity: int) -> torch.Tensor:
        return torch.zeros(self.max_slots, self.heads, capacity, self.head_dim, dtype=self.dtype, device=self.device)

    def reserve(self, length: int) -> None:
        """Room for `length` entries per row (doubling, up to the context window plus one)."""
        if length <= self.capacity:
            return
        capacity, live = doubled_capacity(self.capacity, length, self.max_capacity), self.live
        for buffers in (self.keys, self.values):
            for layer, buffer in enumerate(buffers):
                grown = self._buffer(capacity)
                grown[:live, :, :self.capacity] = buffer[:live]
                buffers[layer] = grown
        self.capacity = capacity

    # ----------------------------------------------------------------------------------------------- steps

    @torch.no_grad()
    def prefill(self, prompt: list[int], slots: list[int]) -> torch.Tensor:
        """Runs the prompt once into every slot of `slots`; returns the logits of its last position [V]."""
        self.reserve(len(prompt))
        out = self.model(input_ids=torch.tensor([prompt], device=self.device), use_cache=True, **self._last_only)
        cache, rows = getattr(out, self._cache_name), self.row_of[slots].to(self.device)
        for layer in range(self.layers):
            entry = cache.layers[layer]  # keys, values [1, H, P, d]
            self.keys[layer][rows, :, :len(prompt)] = entry.keys[0].to(self.dtype)
            self.values[layer][rows, :, :len(prompt)] = entry.values[0].to(self.dtype)
        self.lengths[self.row_of[slots]] = len(prompt)
        return out.logits[0, -1].float()

    @torch.no_grad()
    def decode(self, slots: list[int], tokens: torch.Tensor) -> torch.Tensor:
        """One token per slot (tokens [B]); returns next-token logits [B, V] in the order of `slots`."""
        rows = self.row_of[slots]  # [B] physical rows
        everyone = len(slots) == self.live  # the rows are a permutation of 0..B-1: run them in row order
        if everyone:
            ordered = torch.empty_like(tokens)
            ordered[rows] = tokens
            tokens, index = ordered, slice(0, len(slots))
            starts = self.lengths[:len(slots)].clone()
        else:
            index, starts = rows.to(self.device), self.lengths[rows]
        length = int(starts.max()) + 1
        self.reserve(length)
        visible = torch.arange(length)[None] <= starts[:, None]  # [B, L]: own entries and the new one
        mask = torch.zeros(visible.shape, dtype=self.dtype).masked_fill_(~visible, torch.finfo(self.dtype).min)
        device_starts = starts.to(self.device)
        cache = DynamicCache()
        cache.layers = [_SlotLayer(self.keys[layer], self.values[layer], index, device_starts, length)
                        for layer in range(self.layers)]
        out = self.model(input_ids=tokens[:, None].to(self.device), attention_mask=mask[:, None, None].to(self.device),
                         position_ids=device_starts[:, None], use_cache=True, **{self._cache_name: cache})
        self.lengths[rows] += 1
        logits = out.logits[:, -1].float()
        return logits[rows.to(self.device)] if everyone else logits


class _SlotLayer(DynamicLayer):
    """One layer's step over the runner's buffers: writes the new key and value of row b at starts[b] and
    returns the rows' entries up to `length` ([B, H, length, d]: views when `index` is a slice)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, index, starts: torch.Tensor, length: int):
        super().__init__()
        self.buffers, self.index, self.starts, self.length = (keys, values), index, starts, length
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        rows = (torch.arange(self.starts.shape[0], device=self.starts.device) if isinstance(self.index, slice)
                else self.index)
        for buffer, new in zip(self.buffers, (key_states, value_states)):
            buffer[rows, :, self.starts] = new[:, :, 0].to(buffer.dtype)  # new [B, H, 1, d]
        self.keys, self.values = (buffer[self.index, :, :self.length] for buffer in self.buffers)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length - 1
