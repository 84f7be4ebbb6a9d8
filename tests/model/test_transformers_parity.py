"""transformers loads our checkpoints as DeepseekV3ForCausalLM, offline, and computes the same logits; its
MTP drafter (generate(use_mtp=True)) loads our MTP weights and drafts the same logits as ours."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from r1.model.checkpoint import save_pretrained
from tests.model.conftest import VOCAB, random_model

YARN = {"type": "yarn", "factor": 4, "original_max_position_embeddings": 256, "beta_fast": 32, "beta_slow": 1,
        "mscale": 1.0, "mscale_all_dim": 1.0}
CONFIGS = {
    "tiny": {},
    "full query projection": {"q_lora_rank": None},
    "yarn": {"rope_scaling": YARN, "max_position_embeddings": 1024},
    "no dense layer, 4 groups": {"first_k_dense_replace": 0, "n_group": 4, "topk_group": 2,
                                 "num_experts_per_tok": 3},
}


def load_in_transformers(model, directory):
    save_pretrained(model, directory)
    return AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_transformers_computes_our_logits(tmp_path, monkeypatch, overrides, tokens):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = random_model(**overrides)
    theirs = load_in_transformers(ours, tmp_path)
    assert type(theirs).__name__ == "DeepseekV3ForCausalLM"
    with torch.no_grad():
        assert torch.allclose(ours(tokens).logits, theirs(tokens).logits, atol=1e-4, rtol=0)


def test_transformers_mtp_drafter_loads_our_mtp_weights(tmp_path, monkeypatch):
    """transformers finds MTP weights by DeepseekV3's `_keys_to_ignore_on_load_unexpected`, which names layer
    61 only (the 671B layout), so the check uses 61 thin layers."""
    from transformers.modeling_layers import MtpModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ours = random_model(num_hidden_layers=61, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
                        q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8,
                        num_attention_heads=2, num_key_value_heads=2)
    theirs = load_in_transformers(ours, tmp_path)
    drafter = MtpModel.from_pretrained(theirs, device_map={"": "cpu"})
    ids = torch.randint(3, VOCAB, (1, 10), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = ours(ids)
        hidden = theirs(ids, output_hidden_states=True).hidden_states[-1]
        assert torch.allclose(hidden, out.hidden, atol=1e-5)  # transformers feeds MTP the normed hidden too
        positions = torch.arange(ids.shape[1] - 1)[None]
        embeds = theirs.model.embed_tokens(ids[:, 1:])
        drafted = drafter.layers[0](embeds, hidden[:, :-1], drafter.rotary_emb(embeds, positions), None,
                                    positions, None)
        their_logits = drafter.shared_head(drafted)
        our_logits = ours.mtp_logits(ours.mtp_hidden(ids, out.hidden)[0], 1)
        assert torch.allclose(their_logits, our_logits, atol=1e-4)
        plain = theirs.generate(ids, max_new_tokens=8, do_sample=False)
        speculative = theirs.generate(ids, max_new_tokens=8, do_sample=False, use_mtp=True)
    assert torch.equal(plain, speculative)
