"""The engine's cache store: one row ("slot") per running sample, per cached layer, growing on demand.

Each cached layer is a buffer [slots, capacity, width] (the teacher's: width = kv_lora_rank +
qk_rope_head_dim, the compressed MLA entry; transformers students keep their keys and values in their own
packed buffers instead, see `hf_runner.py`). A sample owns one slot from admission to its end; a decode step gathers the slots of the running
samples up to the longest length among them (`gather`), the model attends over that ragged batch with a key
mask, and the new entries are written back at each sample's own length (`write`). Nothing is copied per
sample per step, and a finished sample frees its slot at once (`free`), which is what lets requests join
and leave the batch between decode steps.

Capacity grows by doubling up to `max_capacity` (the context window plus the speculative look-ahead), so a
server sized for long contexts does not hold them until a sample needs them. Not done: paging (vLLM's
blocks) and prefix sharing across requests; the n samples of one request share their prompt's prefill, not
its cache rows.
"""

from __future__ import annotations

import torch

from r1.errors import ResourceExhausted



def doubled_capacity(capacity: int, length: int, max_capacity: int) -> int:
    """The capacity that holds `length` entries: `capacity` doubled until it does, capped at `max_capacity`
    (ResourceExhausted beyond it). Shared by the teacher's slot cache and the students' key/value buffers."""
    if length > max_capacity:
        raise ResourceExhausted(f"{length} cached tokens exceed the cache's {max_capacity}")
    while capacity < length:
        capacity *= 2
    return min(capacity, max_capacity)

class SlotCache:
    def __init__(self, layers: int, width: int, slots: int, max_capacity: int, dtype: torch.dtype,
                 device: torch.device | str = "cpu", initial_capacity: int = 256):
        self.layers, self.width, self.slots, self.max_capacity = layers, width, slots, max_capacity
        self.dtype, self.device = dtype, torch.device(device)
        self.capacity = min(initial_capacity, max_capacity)
        self.buffers = [torch.zeros(slots, self.capacity, width, dtype=dtype, device=self.device)
                        for _ in range(layers)]
        self._free = list(range(slots - 1, -1, -1))

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def allocate(self) -> int:
        if not self._free:
            raise ResourceExhausted(f"all {self.slots} cache slots are in use")
        return self._free.pop()

    def free(self, slot: int) -> None:
        self._free.append(slot)

    def reserve(self, length: int) -> None:
        """Make room for `length` tokens in every slot (doubling, up to max_capacity)."""
        if length <= self.capacity:
            return
        capacity = doubled_capacity(self.capacity, length, self.max_capacity)
        grown = []
        for buffer in self.buffers:
            new = torch.zeros(self.slots, capacity, self.width, dtype=self.dtype, device=self.device)
            new[:, :self.capacity] = buffer
            grown.append(new)
        self.buffers, self.capacity = grown, capacity

    def gather(self, layer: int, rows: torch.Tensor, length: int) -> torch.Tensor:
        """[B, length, width]: the first `length` entries of each slot in rows [B] (entries past a slot's own
        length are stale and must be masked by the caller)."""
        return self.buffers[layer][rows, :length]

    def write(self, layer: int, rows: torch.Tensor, starts: torch.Tensor, entries: torch.Tensor,
              counts: torch.Tensor | None = None) -> None:
        """Store entries [B, S, width] of slot rows[b] at positions starts[b] .. starts[b] + S - 1 (only the
        first counts[b] of them when given)."""
        batch, seq = entries.shape[:2]
        self.reserve(int(starts.max()) + seq)
        offsets = torch.arange(seq, device=self.device)
        if counts is None:
            row_index = rows[:, None].expand(batch, seq)
            self.buffers[layer][row_index, starts[:, None] + offsets] = entries.to(self.dtype)
            return
        valid = offsets[None] < counts[:, None]  # [B, S]
        row_index = rows[:, None].expand(batch, seq)[valid]
        self.buffers[layer][row_index, (starts[:, None] + offsets)[valid]] = entries[valid].to(self.dtype)

    def copy_prefix(self, layer: int, source: torch.Tensor, rows: list[int]) -> None:
        """Put one prefill's entries source [P, width] at the start of each slot in rows (a request's n
        samples share their prompt)."""
        self.reserve(source.shape[0])
        self.buffers[layer][rows, :source.shape[0]] = source.to(self.dtype)

    def bytes_per_token(self) -> int:
        return self.layers * self.width * self.buffers[0].element_size()
