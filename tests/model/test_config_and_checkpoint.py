"""Config presets, validation and config.json; checkpoints in DeepSeek-V3's layout, read back strictly; the
671B preset's parameter counts against the published figures."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from r1.errors import FailedPrecondition, InvalidArgument, NotFound
from r1.model.checkpoint import load_pretrained, save_pretrained
from r1.model.config import PRESETS, DeepSeekV3Config, preset
from r1.model.params import parameter_counts
from tests.model.conftest import random_model


def test_the_671b_preset_counts_the_published_parameters():
    counts = parameter_counts(PRESETS["deepseek-v3-671b"])
    assert abs(counts.main / 671e9 - 1) < 0.01  # 671.03B
    assert abs(counts.with_mtp / 685e9 - 1) < 0.01  # 684.49B, MTP stored with its embedding and head copies
    assert abs(counts.mtp / 14e9 - 1) < 0.05  # 13.46B
    # "37B activated": 37.55B with the embedding table, 36.63B without; the paper does not say which.
    assert counts.activated_without_embedding < 37e9 < counts.activated
    assert abs(counts.activated / 37e9 - 1) < 0.015 and abs(counts.activated_without_embedding / 37e9 - 1) < 0.0105


@pytest.mark.parametrize("overrides, field", [
    ({"n_group": 3}, "n_group"),
    ({"topk_group": 3}, "topk_group"),
    ({"num_experts_per_tok": 5}, "num_experts_per_tok"),
    ({"qk_rope_head_dim": 7}, "qk_rope_head_dim"),
    ({"scoring_func": "softmax"}, "scoring_func"),
    ({"first_k_dense_replace": 9}, "first_k_dense_replace"),
    ({"rope_scaling": {"type": "linear", "factor": 2}}, "rope_scaling.type"),
    ({"rope_scaling": {"type": "yarn"}}, "rope_scaling.factor"),
    ({"hidden_size": 0}, "hidden_size"),
])
def test_a_config_that_cannot_work_names_its_field(overrides, field):
    with pytest.raises(InvalidArgument) as raised:
        preset("tiny", **overrides)
    assert raised.value.field == field


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(InvalidArgument, match="tiny, small, deepseek-v3-671b"):
        preset("huge")


def test_config_json_round_trips_and_reads_transformers_5_layout(tmp_path):
    config = PRESETS["deepseek-v3-671b"]
    config.save(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "deepseek_v3" and data["architectures"] == ["DeepseekV3ForCausalLM"]
    assert data["num_nextn_predict_layers"] == 1
    assert DeepSeekV3Config.load(tmp_path) == config
    v5 = {k: v for k, v in data.items() if k not in ("rope_scaling", "rope_theta")}
    v5["rope_parameters"] = {"rope_type": "yarn", "rope_theta": 10000.0, **{
        k: v for k, v in config.rope_scaling.items() if k != "type"}}
    assert DeepSeekV3Config.from_hf_dict(v5).rope_scaling["factor"] == 40
    with pytest.raises(InvalidArgument, match="model_type"):
        DeepSeekV3Config.from_hf_dict({"model_type": "llama"})


def test_checkpoint_uses_deepseek_v3_names_and_reloads_exactly(tmp_path, tokens):
    model = random_model()
    save_pretrained(model, tmp_path)
    names = set(load_file(str(tmp_path / "model.safetensors")))
    last = model.config.num_hidden_layers  # the MTP module's layer number
    for name in ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                 "model.layers.0.mlp.gate_proj.weight",  # dense layer
                 "model.layers.1.mlp.gate.weight", "model.layers.1.mlp.gate.e_score_correction_bias",
                 "model.layers.1.mlp.experts.7.down_proj.weight", "model.layers.1.mlp.shared_experts.up_proj.weight",
                 "model.layers.1.self_attn.q_a_proj.weight", "model.layers.1.self_attn.kv_a_proj_with_mqa.weight",
                 f"model.layers.{last}.eh_proj.weight", f"model.layers.{last}.enorm.weight",
                 f"model.layers.{last}.shared_head.norm.weight", f"model.layers.{last}.shared_head.head.weight",
                 f"model.layers.{last}.embed_tokens.weight", f"model.layers.{last}.mlp.experts.0.gate_proj.weight"]:
        assert name in names, name
    assert not any(name.startswith("mtp.") for name in names)
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation["temperature"] == 0.6 and generation["eos_token_id"] == model.config.eos_token_id
    loaded = load_pretrained(tmp_path)
    with torch.no_grad():
        # the same tensors (bitwise), so the same outputs up to kernel rounding on other memory layouts
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
        assert torch.allclose(loaded(tokens).logits, model(tokens).logits, atol=1e-6)
        loaded_hidden = loaded.mtp_hidden(tokens, loaded(tokens).hidden)[0]
        assert torch.allclose(loaded_hidden, model.mtp_hidden(tokens, model(tokens).hidden)[0], atol=1e-6)


def test_a_checkpoint_that_does_not_match_its_config_is_refused(tmp_path):
    save_pretrained(random_model(), tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["model.layers.2.self_attn.o_proj.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(InvalidArgument, match="missing.*model.layers.2.self_attn.o_proj.weight"):
        load_pretrained(tmp_path)


def test_quantized_weights_and_unknown_places_get_clear_errors(tmp_path, monkeypatch):
    save_pretrained(random_model(), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "quantization_config": {"quant_method": "fp8"}}))
    with pytest.raises(FailedPrecondition, match="fp8_cast_bf16"):
        load_pretrained(tmp_path)
    with pytest.raises(NotFound, match="no checkpoint directory"):
        load_pretrained(tmp_path / "missing")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFound, match="could not be fetched"):
        load_pretrained("deepseek-ai/DeepSeek-V3")


def test_tied_embeddings_round_trip(tmp_path, tokens):
    model = random_model(tie_word_embeddings=True)
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        assert torch.allclose(loaded(tokens).logits, model(tokens).logits, atol=1e-6)
