"""Runs the DeepSeek-V3 teacher for the engine: prefill, batched decode on the latent cache, MTP drafts.

The scheduler (`torch_engine.py`) owns the samples; this runner owns their cache slots and the model calls.
Every step runs the ragged batch of running samples at once: their slots are gathered to the longest length,
a key mask hides each slot's stale tail, positions are each sample's own, and the new latent entries are
written back at each sample's length (`slots.py`).

- Prefill: the prompt runs once (naive MLA, batch 1) and its latent entries are copied into the slots of
  all n samples; the samples then differ from their first sampled token on.
- Decode: one token per sample, with the absorbed MLA path against the compressed cache
  `[latent | rope key]` (DeepSeek-V3 `attn_impl="absorb"`): nothing is up-projected per cached token.
- MTP speculation with k draft tokens (DeepSeek-V3's MTP module reused as a drafter, as vLLM's `mtp` and
  SGLang's EAGLE do). The module's input at position i is (h_i, emb(t_{i+1})) and it predicts t_{i+2}; it
  keeps a latent cache of its own (cache layer `num_hidden_layers`). A step:
  1. catch-up: the pairs whose main hidden state became known in the last step (1 + accepted drafts per
     sample, ragged) run through the module in one call; its output at the last pair gives draft 1;
  2. drafts 2..k chain the module on its own output (EAGLE-style: (h'_i, emb(d)) at position i + 1);
  3. verify: the main model runs [t_n, d_1..d_k] in one call (absorbed path, k + 1 query tokens), giving
     the target logits for every draft and the bonus token;
  4. commit: the scheduler accepts a drafts per sample; the main cache keeps n + a + 1 entries, the
     module's speculative entries are dropped, and the a + 1 true hidden states become the next catch-up.
  A plain decode step may come between speculative ones (the engine drops speculation while the batch is
  large): it queues its token and hidden state for the next catch-up, so the module's cache stays whole.
  Greedy acceptance keeps exactly the tokens plain greedy decoding would produce; the verify pass and plain
  decode use the same absorbed attention, so outputs agree token for token (float rounding across
  different batch shapes can, in principle, flip a near-tie argmax; the tests pin exactness on real runs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1.engine.slots import SlotCache
from r1.model.cache import LatentCache
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM, causal_mask
from r1.model.moe import pack_experts
from r1.model.rope import cos_sin

Chooser = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]  # (logits [B, V], draft step) -> (tokens, probs)


class TeacherRunner:
    def __init__(self, model: DeepSeekV3ForCausalLM, max_slots: int, max_context: int, spec_tokens: int = 0,
                 device: torch.device | str = "cpu"):
        config = model.config
        if spec_tokens and config.num_nextn_predict_layers == 0:
            raise ValueError("speculative decoding needs MTP modules; this checkpoint has num_nextn_predict_layers=0")
        self.model, self.config, self.spec_tokens = model, config, spec_tokens
        self.device = torch.device(device)
        width = config.kv_lora_rank + config.qk_rope_head_dim
        dtype = next(model.parameters()).dtype
        capacity = max_context + spec_tokens + 1
        self.main = SlotCache(config.num_hidden_layers, width, max_slots, capacity, dtype, self.device)
        self.mtp = SlotCache(1, width, max_slots, capacity, dtype, self.device) if spec_tokens else None
        self.length = torch.zeros(max_slots, dtype=torch.long)  # main-cache entries per slot
        self.mtp_length = torch.zeros(max_slots, dtype=torch.long)
        self.catch_up_hidden: list[torch.Tensor | None] = [None] * max_slots  # [c, D]: h_m .. h_{n-1}
        self.catch_up_tokens: list[list[int]] = [[] for _ in range(max_slots)]  # t_{m+1} .. t_{n-1}
        self._verified: tuple[torch.Tensor, torch.Tensor] | None = None  # (hidden [B, k+1, D], drafts [B, k])
        self.weights_changed()

    def weights_changed(self) -> None:
        """Re-pack the experts for decode (`moe.packed_experts`); the engine calls it after a weight update."""
        pack_experts(self.model)

    # ------------------------------------------------------------------------------------------ bookkeeping

    @property
    def free_slots(self) -> int:
        return self.main.free_slots

    def allocate(self) -> int:
        slot = self.main.allocate()
        if self.mtp is not None:
            self.mtp.allocate()  # the two stores allocate in lockstep: same slot number
        return slot

    def release(self, slot: int) -> None:
        self.main.free(slot)
        if self.mtp is not None:
            self.mtp.free(slot)
        self.length[slot] = self.mtp_length[slot] = 0
        self.catch_up_hidden[slot], self.catch_up_tokens[slot] = None, []

    def cache_bytes(self, slots: list[int]) -> int:
        """Bytes of latent cache the slots hold: main layers plus, with speculation, the MTP block's."""
        held = int(self.length[slots].sum()) * self.main.bytes_per_token()
        if self.mtp is not None:
            held += int(self.mtp_length[slots].sum()) * self.mtp.bytes_per_token()
        return held

    # ----------------------------------------------------------------------------------------------- steps

    @torch.no_grad()
    def prefill(self, prompt: list[int], slots: list[int]) -> torch.Tensor:
        """Runs the prompt once into every slot of `slots`; returns the logits of its last position [V]."""
        ids = torch.tensor([prompt], device=self.device)
        cache = self.model.new_cache()
        out = self.model(ids, cache=cache)
        for layer, entry in enumerate(cache.entries):
            self.main.copy_prefix(layer, entry[0], slots)
        self.length[slots] = len(prompt)
        if self.mtp is not None:
            self._prefill_mtp(ids, out.hidden, slots)
        return out.logits[0, -1]

    def _prefill_mtp(self, ids: torch.Tensor, hidden: torch.Tensor, slots: list[int]) -> None:
        """The module over the prompt's known pairs (h_i, t_{i+1}), i < P - 1; (h_{P-1}, t_P) waits for t_P."""
        prompt_length = ids.shape[1]
        if prompt_length > 1:
            cache = LatentCache(self.config.num_hidden_layers + 1)
            positions = torch.arange(prompt_length - 1, device=self.device)[None]
            self._run_mtp(self.model.model.embed_tokens(ids[:, 1:]), hidden[:, :-1], positions,
                          causal_mask(prompt_length - 1, 0, None, self.device), cache)
            self.mtp.copy_prefix(0, cache.entries[self.config.num_hidden_layers][0], slots)
        self.mtp_length[slots] = prompt_length - 1
        for slot in slots:
            self.catch_up_hidden[slot] = hidden[0, -1:]
            self.catch_up_tokens[slot] = []

    @torch.no_grad()
    def decode(self, slots: list[int], tokens: torch.Tensor) -> torch.Tensor:
        """One token per slot (tokens [B]); returns next-token logits [B, V]. With speculation on, the pairs
        (h_n, t_n) join each slot's catch-up, for the module to run at the next `propose`."""
        logits, hidden = self._main_step(slots, tokens[:, None])
        if self.mtp is not None:
            for b, slot in enumerate(slots):
                self.catch_up_hidden[slot] = torch.cat([self.catch_up_hidden[slot], hidden[b]])
                self.catch_up_tokens[slot].append(int(tokens[b]))
        return logits[:, 0]

    @torch.no_grad()
    def propose(self, slots: list[int], pending: torch.Tensor, choose: Chooser) -> tuple[torch.Tensor, torch.Tensor]:
        """MTP drafts for each slot, given its pending token t_n (sampled, not yet cached) [B]. Returns drafts
        [B, k] and the distributions they were drawn from [B, k, V] (None when `choose` gives none: greedy)."""
        k, rows = self.spec_tokens, torch.tensor(slots)
        batch = len(slots)
        # 1. catch-up pairs (h_i, t_{i+1}) for i = m .. n-1, ragged per slot
        counts = torch.tensor([self.catch_up_hidden[s].shape[0] for s in slots])
        width = int(counts.max())
        hidden = torch.zeros(batch, width, self.config.hidden_size, device=self.device)
        pair_tokens = torch.zeros(batch, width, dtype=torch.long, device=self.device)
        for b, slot in enumerate(slots):
            c = int(counts[b])
            hidden[b, :c] = self.catch_up_hidden[slot]
            pair_tokens[b, :c] = torch.tensor(self.catch_up_tokens[slot] + [int(pending[b])])
        starts = self.mtp_length[rows]
        out = self._mtp_step(rows, starts, pair_tokens, hidden, counts)  # [B, W, D]
        self.mtp_length[rows] = starts + counts
        last = out[torch.arange(batch), counts - 1]  # [B, D]: h'_{n-1}
        drafts, probs = [], []
        for step in range(k):
            token, p = choose(self.model.mtp_logits(last, 1), step)
            drafts.append(token)
            probs.append(p)
            if step + 1 < k:  # 2. chain: (h'_{n-1+step}, d_{step+1}) at position n + step
                starts = self.mtp_length[rows] + step
                last = self._mtp_step(rows, starts, token[:, None], last[:, None], torch.ones_like(counts))[:, 0]
        for slot in slots:
            self.catch_up_hidden[slot], self.catch_up_tokens[slot] = None, []
        return torch.stack(drafts, dim=1), (None if probs[0] is None else torch.stack(probs, dim=1))

    @torch.no_grad()
    def verify(self, slots: list[int], pending: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
        """The main model on [t_n, d_1..d_k] per slot; returns target logits [B, k + 1, V]."""
        logits, hidden = self._main_step(slots, torch.cat([pending[:, None], drafts], dim=1))
        self._verified = (hidden, drafts)
        return logits

    def commit(self, slots: list[int], accepted: list[int]) -> None:
        """Keep t_n and the first accepted[b] drafts of each slot; queue their hidden states for the module."""
        hidden, drafts = self._verified
        k = drafts.shape[1]
        for b, (slot, a) in enumerate(zip(slots, accepted)):
            self.length[slot] -= k - a  # verify cached k + 1 entries; keep a + 1
            self.catch_up_hidden[slot] = hidden[b, :a + 1]
            self.catch_up_tokens[slot] = drafts[b, :a].tolist()
        self._verified = None

    # ------------------------------------------------------------------------------------------- internals

    def _main_step(self, slots: list[int], tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, S] appended after each slot's cache; returns logits [B, S, V] and hidden [B, S, D]."""
        rows = torch.tensor(slots)
        starts = self.length[rows]  # [B]
        batch, seq = tokens.shape
        past = int(starts.max())
        cache = LatentCache(self.config.num_hidden_layers)
        cache.entries = [self.main.gather(layer, rows, past) for layer in range(self.config.num_hidden_layers)]
        key_mask = torch.cat([torch.arange(past)[None] < starts[:, None], torch.ones(batch, seq, dtype=torch.bool)],
                             dim=1).to(self.device)
        positions = (starts[:, None] + torch.arange(seq)[None]).to(self.device)
        out = self.model(tokens.to(self.device), positions=positions, cache=cache, key_mask=key_mask, absorbed=True)
        for layer, entries in enumerate(cache.entries):
            self.main.write(layer, rows, starts, entries[:, past:])
        self.length[rows] = starts + seq
        return out.logits, out.hidden

    def _mtp_step(self, rows: torch.Tensor, starts: torch.Tensor, tokens: torch.Tensor, hidden: torch.Tensor,
                  counts: torch.Tensor) -> torch.Tensor:
        """The module on ragged pairs: tokens [B, W], hidden [B, W, D], counts[b] real pairs starting at
        module position starts[b]; writes their entries; returns the module's output [B, W, D]."""
        batch, seq = tokens.shape
        past = int(starts.max())
        layer = self.config.num_hidden_layers
        cache = LatentCache(layer + 1)
        cache.entries[layer] = self.mtp.gather(0, rows, past)
        real = torch.arange(seq)[None] < counts[:, None]
        key_mask = torch.cat([torch.arange(past)[None] < starts[:, None], real], dim=1).to(self.device)
        positions = (starts[:, None] + torch.arange(seq)[None]).to(self.device)
        out = self._run_mtp(self.model.model.embed_tokens(tokens.to(self.device)), hidden, positions,
                            causal_mask(seq, past, key_mask, self.device), cache)
        self.mtp.write(0, rows, starts, cache.entries[layer][:, past:], counts)
        return out

    def _run_mtp(self, embeds, hidden, positions, mask, cache) -> torch.Tensor:
        cos, sin = cos_sin(self.model.inv_freq, positions, self.model.rope_scale)
        return self.model.mtp[0](embeds, hidden, cos, sin, mask, cache, absorbed=embeds.shape[1] == 1)
