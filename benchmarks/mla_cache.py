"""KV-cache bytes per token: our compressed MLA cache against transformers' DeepseekV3 cache, same weights.

    PYTHONPATH=. .venv/bin/python benchmarks/mla_cache.py [--tokens 64]

For each config the same randomly initialised model runs a prefill of `--tokens` tokens in ours (a
`LatentCache`) and in transformers (`DynamicCache` from `use_cache=True`, after loading our checkpoint);
both caches are measured by the bytes of the tensors they hold, divided by the tokens. Also printed: the
formula (kv_lora_rank + qk_rope_head_dim) x layers x dtype bytes, and what multi-head attention with the
same heads would hold (K: qk_head_dim, V: v_head_dim per head). Configs: the tiny and small presets, and
DeepSeek-V3's attention dimensions (2 dense layers, small vocabulary: the full model does not fit here;
the per-layer figure is the same), in bfloat16.

Found (transformers 5.24): its DeepseekV3 cache holds the compressed latent and rope key too (a [B, 1, T,
kv_lora_rank] key and [B, 1, T, rope] value per layer), so the ratio is 1.00x; both are ~8-71x below MHA.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile

import torch

from r1.model.checkpoint import save_pretrained
from r1.model.config import DeepSeekV3Config, preset
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

CONFIGS = {
    "tiny": preset("tiny", vocab_size=512),
    "small": preset("small", vocab_size=512),
    "deepseek-v3 attention, 2 layers": preset(
        "deepseek-v3-671b", vocab_size=512, num_hidden_layers=2, first_k_dense_replace=2, intermediate_size=256,
        num_nextn_predict_layers=0, max_position_embeddings=4096),
}


def transformers_cache_bytes(cache) -> int:
    total = 0
    for layer in cache.layers:
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if tensor is not None:
                total += tensor.numel() * tensor.element_size()
    return total


def measure(config: DeepSeekV3Config, tokens: int, dtype: torch.dtype) -> tuple[float, float]:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = DeepSeekV3ForCausalLM(config).to(dtype).eval()
    ids = torch.randint(3, config.vocab_size, (1, tokens))
    cache = model.new_cache()
    with torch.no_grad():
        model(ids, cache=cache)
    with tempfile.TemporaryDirectory() as directory:
        save_pretrained(model, directory)
        theirs = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype).eval()
        with torch.no_grad():
            out = theirs(ids, use_cache=True)
    their_cache = getattr(out, "cache", None) or out.past_key_values  # renamed `cache` in transformers 5.2x
    return cache.nbytes / tokens, transformers_cache_bytes(their_cache) / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; torch {torch.__version__}, "
          f"transformers {transformers.__version__}; bfloat16, {args.tokens} tokens")
    print(f"{'config':<34}{'ours B/tok':>11}{'formula':>9}{'transformers':>14}{'theirs/ours':>13}{'MHA B/tok':>11}"
          f"{'MHA/ours':>10}")
    for name, config in CONFIGS.items():
        ours, theirs = measure(config, args.tokens, torch.bfloat16)
        formula = config.cache_bytes_per_token(2)
        mha = config.num_attention_heads * (config.qk_head_dim + config.v_head_dim) * 2 * config.num_hidden_layers
        print(f"{name:<34}{ours:>11.0f}{formula:>9}{theirs:>14.0f}{theirs / ours:>12.2f}x{mha:>11}"
              f"{mha / ours:>9.1f}x")


if __name__ == "__main__":
    main()
