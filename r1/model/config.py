"""The teacher's configuration: DeepSeek-V3's architecture, with Hugging Face `DeepseekV3Config` field names.

One frozen dataclass, so that a `config.json` written by us is a DeepSeek-V3 config that transformers, vLLM
and SGLang read as is, and one of theirs (the real 671B model's) is read by us. Presets: `tiny` (tests, the
demo and the CPU teacher), `small` (a laptop-sized model for longer CPU runs), `deepseek-v3-671b` (the
published config, instantiated on the meta device to count parameters).

Choices:
- `q_lora_rank=None` means a full query projection (`q_proj`), as in DeepSeek-V2-Lite.
- `rope_scaling` is the YaRN dict of DeepSeek's config.json (`type`/`rope_type` "yarn", `factor`,
  `original_max_position_embeddings`, `beta_fast`, `beta_slow`, `mscale`, `mscale_all_dim`), or None.
- `scoring_func` is "sigmoid" (DeepSeek-V3's; "softmax" was V2's and is refused: the bias-corrected
  routing is defined for sigmoid scores only).
- The rope dims are interleaved pairs, as DeepSeek's weights lay them out (`rope_interleave: true` in
  transformers); we rotate pairs in place, transformers de-interleaves: the dot products are the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from r1.errors import InvalidArgument

MODEL_TYPE = "deepseek_v3"
ARCHITECTURES = ["DeepseekV3ForCausalLM"]


@dataclass(frozen=True)
class DeepSeekV3Config:
    """Field names and meanings as in transformers' `DeepseekV3Config` / DeepSeek's config.json.

    vocab_size, hidden_size, num_hidden_layers, num_attention_heads: the usual.
    intermediate_size: the SwiGLU width of the dense layers (the first `first_k_dense_replace`).
    moe_intermediate_size: the width of each routed expert and, times n_shared_experts, of the shared one.
    q_lora_rank: rank of the query down-projection (None: full projection); kv_lora_rank: the latent width,
        what the KV cache stores per token per layer, with the qk_rope_head_dim-wide shared rope key.
    qk_nope_head_dim, qk_rope_head_dim, v_head_dim: per-head query/key parts without and with RoPE, value.
    n_routed_experts, num_experts_per_tok, n_shared_experts: routed experts, how many a token uses, shared.
    n_group, topk_group: routing first keeps `topk_group` of `n_group` expert groups, then the top experts.
    routed_scaling_factor, norm_topk_prob, scoring_func: how routing weights are formed.
    rope_theta, rope_scaling: RoPE base and YaRN (see the module docstring).
    num_nextn_predict_layers: MTP depth (0: no MTP modules).
    """

    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 384
    moe_intermediate_size: int = 64
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    first_k_dense_replace: int = 1
    q_lora_rank: int | None = 64
    kv_lora_rank: int = 32
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 32
    n_routed_experts: int = 8
    n_shared_experts: int = 1
    num_experts_per_tok: int = 2
    n_group: int = 2
    topk_group: int = 1
    routed_scaling_factor: float = 2.5
    norm_topk_prob: bool = True
    scoring_func: str = "sigmoid"
    topk_method: str = "noaux_tc"
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 2048
    num_nextn_predict_layers: int = 1
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    attention_bias: bool = False
    bos_token_id: int = 0
    eos_token_id: int = 1
    pad_token_id: int | None = 2

    def __post_init__(self) -> None:
        self.validate()

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def moe_layers(self) -> range:
        return range(self.first_k_dense_replace, self.num_hidden_layers)

    def cache_bytes_per_token(self, dtype_bytes: int) -> int:
        """What the compressed cache holds per token: (kv_lora_rank + qk_rope_head_dim) x layers x dtype size."""
        return (self.kv_lora_rank + self.qk_rope_head_dim) * self.num_hidden_layers * dtype_bytes

    def validate(self) -> None:
        """InvalidArgument naming the first field that cannot work."""
        positive = ["vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                    "n_routed_experts", "num_experts_per_tok", "n_group", "topk_group", "max_position_embeddings"]
        for name in positive:
            if not getattr(self, name) > 0:
                raise InvalidArgument(name, f"must be positive, got {getattr(self, name)}")
        if self.q_lora_rank is not None and self.q_lora_rank <= 0:
            raise InvalidArgument("q_lora_rank", "must be positive, or null for a full query projection")
        if self.qk_rope_head_dim % 2:
            raise InvalidArgument("qk_rope_head_dim", f"must be even (rotated in pairs), got {self.qk_rope_head_dim}")
        if not 0 <= self.first_k_dense_replace <= self.num_hidden_layers:
            raise InvalidArgument("first_k_dense_replace", f"must be in [0, num_hidden_layers = "
                                                           f"{self.num_hidden_layers}]")
        if self.n_routed_experts % self.n_group:
            raise InvalidArgument("n_group", f"must divide n_routed_experts = {self.n_routed_experts}")
        per_group = self.n_routed_experts // self.n_group
        if per_group < 2:
            raise InvalidArgument("n_group", "each group needs at least 2 experts (group score = top-2 sum)")
        if not self.topk_group <= self.n_group:
            raise InvalidArgument("topk_group", f"must be at most n_group = {self.n_group}")
        if not self.num_experts_per_tok <= self.topk_group * per_group:
            raise InvalidArgument("num_experts_per_tok", f"must be at most topk_group x experts per group = "
                                                         f"{self.topk_group * per_group}")
        if self.scoring_func != "sigmoid":
            raise InvalidArgument("scoring_func", f"only 'sigmoid' (DeepSeek-V3) is supported, got {self.scoring_func!r}")
        if self.hidden_act != "silu":
            raise InvalidArgument("hidden_act", f"only 'silu' (SwiGLU experts) is supported, got {self.hidden_act!r}")
        if self.num_nextn_predict_layers < 0:
            raise InvalidArgument("num_nextn_predict_layers", "must be >= 0")
        if self.rope_scaling is not None:
            kind = self.rope_scaling.get("type", self.rope_scaling.get("rope_type"))
            if kind != "yarn":
                raise InvalidArgument("rope_scaling.type", f"only 'yarn' is supported, got {kind!r}")
            for key in ("factor", "original_max_position_embeddings"):
                if key not in self.rope_scaling:
                    raise InvalidArgument(f"rope_scaling.{key}", "is required for yarn")

    # ------------------------------------------------------------------------------------------ config.json

    def to_hf_dict(self) -> dict[str, Any]:
        """config.json contents in DeepSeek-V3's Hugging Face layout."""
        data = asdict(self)
        data.update(model_type=MODEL_TYPE, architectures=ARCHITECTURES, torch_dtype="float32",
                    rope_interleave=True, use_cache=True, attention_dropout=0.0)
        return data

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any]) -> DeepSeekV3Config:
        """Reads a DeepSeek-V3 config.json (ours or a published one); keys we do not model are ignored,
        a model_type other than deepseek_v3 is refused."""
        if data.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise InvalidArgument("model_type", f"expected {MODEL_TYPE!r}, got {data.get('model_type')!r}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "rope_scaling" not in data and isinstance(data.get("rope_parameters"), dict):  # transformers 5 layout
            params = data["rope_parameters"]
            values.setdefault("rope_theta", params.get("rope_theta", cls.rope_theta))
            if params.get("rope_type", "default") == "yarn":
                values["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
        if isinstance(values.get("eos_token_id"), list):
            values["eos_token_id"] = values["eos_token_id"][0]
        return cls(**values)

    def save(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "config.json").write_text(json.dumps(self.to_hf_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> DeepSeekV3Config:
        path = Path(directory) / "config.json"
        if not path.is_file():
            raise InvalidArgument("config", f"no config.json in {directory}")
        return cls.from_hf_dict(json.loads(path.read_text()))


# ------------------------------------------------------------------------------------------------ presets

TINY = DeepSeekV3Config()

SMALL = DeepSeekV3Config(
    vocab_size=8192, hidden_size=512, intermediate_size=1536, moe_intermediate_size=256, num_hidden_layers=8,
    num_attention_heads=8, num_key_value_heads=8, first_k_dense_replace=1, q_lora_rank=192, kv_lora_rank=128,
    qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64, n_routed_experts=16, num_experts_per_tok=4,
    n_group=4, topk_group=2, max_position_embeddings=4096)

DEEPSEEK_V3_671B = DeepSeekV3Config(
    vocab_size=129280, hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
    num_hidden_layers=61, num_attention_heads=128, num_key_value_heads=128, first_k_dense_replace=3,
    q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
    n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8, n_group=8, topk_group=4,
    routed_scaling_factor=2.5, norm_topk_prob=True, rope_theta=10000.0, max_position_embeddings=163840,
    rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
                  "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    num_nextn_predict_layers=1, pad_token_id=None)

PRESETS: dict[str, DeepSeekV3Config] = {"tiny": TINY, "small": SMALL, "deepseek-v3-671b": DEEPSEEK_V3_671B}


def preset(name: str, **overrides: Any) -> DeepSeekV3Config:
    """A preset by name, with fields replaced; InvalidArgument listing the presets for an unknown name."""
    if name not in PRESETS:
        raise InvalidArgument("preset", f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature factor: 0.1 * mscale * ln(scale) + 1 (1 for scale <= 1)."""
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def softmax_scale(config: DeepSeekV3Config) -> float:
    """1/sqrt(qk_head_dim), times YaRN's mscale(factor, mscale_all_dim)^2 when YaRN is on (DeepSeek-V3)."""
    scale = config.qk_head_dim ** -0.5
    if config.rope_scaling is not None:
        m = yarn_mscale(config.rope_scaling["factor"], config.rope_scaling.get("mscale_all_dim", 0) or 0)
        if config.rope_scaling.get("mscale_all_dim"):
            scale *= m * m
    return scale


