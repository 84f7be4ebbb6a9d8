"""Teacher checkpoints in DeepSeek-V3's Hugging Face layout: what transformers, vLLM and SGLang load.

A checkpoint directory holds `config.json` (`model_type: deepseek_v3`, `architectures:
["DeepseekV3ForCausalLM"]`, `num_nextn_predict_layers`), `model.safetensors` (or shards plus
`model.safetensors.index.json` when reading someone else's), `generation_config.json` and, when given, the
tokenizer's files.

Parameter names are DeepSeek-V3's: the main model's as in our module tree (`model.layers.{i}.mlp.gate.weight`,
`mlp.gate.e_score_correction_bias`, `mlp.experts.{j}.{gate,up,down}_proj.weight`, `mlp.shared_experts.*`,
...), and MTP depth k under `model.layers.{num_hidden_layers + k}`: `enorm`, `hnorm`, `eh_proj`, the block's
`self_attn.*`, `mlp.*` and norms, `shared_head.norm`, plus copies of the embedding (`embed_tokens`) and the
output head (`shared_head.head`), which DeepSeek's release stores there too and which we read back as the
shared ones (they must be equal to the main model's).

`load_pretrained(name_or_path)` takes a directory, or a hub id resolved through `huggingface_hub` (its
cache, or the hub when online) for users who have the weights. Not done: FP8 block-quantised weights (the
published 671B files): a config with `quantization_config` is refused with the conversion to do first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from r1.errors import FailedPrecondition, InvalidArgument, NotFound
from r1.model.config import DeepSeekV3Config
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM
from r1.model.moe import MoE
from r1.model.rope import inv_freq
from r1.model.tokenizer import save_tokenizer

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
_MTP_OURS = re.compile(r"^mtp\.(\d+)\.(.*)$")
_MTP_THEIRS = re.compile(r"^model\.layers\.(\d+)\.(.*)$")


def to_checkpoint_names(state: dict[str, torch.Tensor], config: DeepSeekV3Config) -> dict[str, torch.Tensor]:
    """Our state dict -> DeepSeek-V3 checkpoint tensors (contiguous, unshared copies)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        match = _MTP_OURS.match(name)
        if match:
            layer = config.num_hidden_layers + int(match[1])
            rest = match[2].removeprefix("block.").replace("shared_head_norm.", "shared_head.norm.")
            name = f"model.layers.{layer}.{rest}"
        out[name] = tensor.detach().contiguous().clone()
    for k in range(config.num_nextn_predict_layers):
        prefix = f"model.layers.{config.num_hidden_layers + k}"
        out[f"{prefix}.embed_tokens.weight"] = state["model.embed_tokens.weight"].detach().clone()
        out[f"{prefix}.shared_head.head.weight"] = state["lm_head.weight"].detach().clone()
    if config.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out


def from_checkpoint_names(tensors: dict[str, torch.Tensor], config: DeepSeekV3Config) -> dict[str, torch.Tensor]:
    """DeepSeek-V3 checkpoint tensors -> our state dict. MTP copies of the embedding and head are checked
    against the main ones and dropped; MTP depths beyond the config's are ignored (as transformers does)."""
    state: dict[str, torch.Tensor] = {}
    main_layers = config.num_hidden_layers
    for name, tensor in tensors.items():
        match = _MTP_THEIRS.match(name)
        if match and int(match[1]) >= main_layers:
            depth, rest = int(match[1]) - main_layers, match[2]
            if depth >= config.num_nextn_predict_layers:
                continue
            if rest in ("embed_tokens.weight", "shared_head.head.weight"):
                shared = "model.embed_tokens.weight" if rest.startswith("embed") else "lm_head.weight"
                if shared in tensors and not torch.equal(tensors[shared], tensor):
                    raise InvalidArgument(name, f"differs from {shared}; MTP shares the main model's")
                continue
            if rest.startswith(("enorm.", "hnorm.", "eh_proj.")):
                state[f"mtp.{depth}.{rest}"] = tensor
            elif rest.startswith("shared_head.norm."):
                state[f"mtp.{depth}.shared_head_norm.{rest.removeprefix('shared_head.norm.')}"] = tensor
            else:
                state[f"mtp.{depth}.block.{rest}"] = tensor
        else:
            state[name] = tensor
    if config.tie_word_embeddings:
        state.setdefault("lm_head.weight", state.get("model.embed_tokens.weight"))
    return state


def save_pretrained(model: DeepSeekV3ForCausalLM, directory: str | Path, tokenizer: Any = None,
                    generation: dict[str, Any] | None = None) -> Path:
    """Writes the checkpoint directory (created if needed) and returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save(directory)
    tensors = to_checkpoint_names(model.state_dict(), model.config)
    save_file(tensors, str(directory / WEIGHTS), metadata={"format": "pt"})
    (directory / "generation_config.json").write_text(json.dumps(generation_config(model.config, generation),
                                                                 indent=2) + "\n")
    if tokenizer is not None:
        save_tokenizer(tokenizer, directory)
    return directory


def generation_config(config: DeepSeekV3Config, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """DeepSeek-R1's recommended sampling (temperature 0.6, top-p 0.95) and the special token ids."""
    data = {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id, "do_sample": True,
            "temperature": 0.6, "top_p": 0.95}
    if config.pad_token_id is not None:
        data["pad_token_id"] = config.pad_token_id
    return {**data, **(overrides or {})}


def load_pretrained(name_or_path: str | Path, dtype: torch.dtype = torch.float32,
                    device: str | torch.device = "cpu") -> DeepSeekV3ForCausalLM:
    """The model in a checkpoint directory (or hub id); strict: every tensor must match a parameter."""
    directory = resolve(name_or_path)
    raw = json.loads((directory / "config.json").read_text())
    if "quantization_config" in raw:
        raise FailedPrecondition(
            f"{directory} holds quantized weights ({raw['quantization_config'].get('quant_method', '?')}); "
            "convert them to bf16 first (DeepSeek-V3's inference/fp8_cast_bf16.py), then load that directory")
    config = DeepSeekV3Config.from_hf_dict(raw)
    with torch.device("meta"):
        model = DeepSeekV3ForCausalLM(config)
    state = from_checkpoint_names(read_tensors(directory), config)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise InvalidArgument("checkpoint", f"{directory} does not match its config: missing {missing[:5]}"
                                            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                                            f"{'...' if len(unexpected) > 5 else ''}")
    state = {k: v.to(torch.float32 if k.endswith("e_score_correction_bias") else dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    _rebuild_buffers(model, config)
    return model.to(device)


def _rebuild_buffers(model: DeepSeekV3ForCausalLM, config: DeepSeekV3Config) -> None:
    """The non-persistent buffers (rope frequencies, expert-load counters) stay on the meta device when the
    model is built there; make them real."""
    model.inv_freq = inv_freq(config)
    for module in model.modules():
        if isinstance(module, MoE):
            module.load = torch.zeros(config.n_routed_experts)


def read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint directory: `model.safetensors`, or the shards its index names."""
    if (directory / INDEX).is_file():
        index = json.loads((directory / INDEX).read_text())
        tensors: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            tensors.update(load_file(str(directory / shard)))
        return tensors
    if (directory / WEIGHTS).is_file():
        return load_file(str(directory / WEIGHTS))
    raise NotFound(f"no {WEIGHTS} or {INDEX} in {directory}")


def resolve(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local checkpoint directory, or a hub id (at `revision`, default branch when None) fetched through
    huggingface_hub's cache."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InvalidArgument("checkpoint", f"{path} has no config.json; is it a checkpoint directory?")
        return path
    name = str(name_or_path)
    if path.is_absolute() or name.startswith(".") or name.count("/") != 1:
        raise NotFound(f"no checkpoint directory at {name}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, revision=revision,
                                      allow_patterns=["*.json", "*.safetensors", "tokenizer*"]))
    except Exception as e:  # offline, unknown repo, no access: say which, keep the cause
        raise NotFound(f"{name} is not a local directory and could not be fetched from the hub "
                       f"({type(e).__name__}: {e})") from e
