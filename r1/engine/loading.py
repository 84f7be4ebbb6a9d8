"""Loading a model for the torch engine, and checking weight updates against it.

`load_model(path)` reads `config.json`: a `deepseek_v3` checkpoint loads as our teacher
(`r1.model.checkpoint.load_pretrained`, run by `TeacherRunner`); any other causal LM that transformers
knows (Qwen2, Llama students) loads through `AutoModelForCausalLM` (run by `HFRunner`). The tokenizer comes
from the same directory. The served parameter names are the checkpoint's (Hugging Face names), so a trainer
pushes exactly what it would save.

`check_update(loaded, tensors)` validates a whole update before anything is applied: every name must be a
served parameter, every shape the served one, every dtype a floating type (cast to the served dtype); a
DeepSeek-V3 MTP module's copies of the embedding and head (`model.layers.{L}.embed_tokens`,
`shared_head.head`) update the shared tensors. It returns (target, new value) pairs for the engine thread to
copy in between two decode steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import torch

from r1.engine.types import ModelInfo
from r1.errors import InvalidArgument

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    info: ModelInfo
    model: torch.nn.Module
    runner: Any  # TeacherRunner | HFRunner
    tokenizer: Any
    parameters: dict[str, torch.Tensor]  # checkpoint name -> the served tensor


def load_model(path: str, config, revision: str | None = None, section: str = "engine") -> LoadedModel:
    """config: a TorchEngineConfig (dtype, device, max_num_seqs, max_context_tokens, spec_tokens, version);
    section: its place in the caller's settings, for error messages. A hub revision needs a hub id."""
    from r1.model.checkpoint import resolve

    if revision is not None and Path(path).is_dir():
        raise InvalidArgument("revision", f"{path} is a local directory; a revision applies to hub ids only")
    directory = resolve(path, revision)
    raw = json.loads((directory / "config.json").read_text())
    dtype, device = DTYPES[config.dtype], torch.device(config.device)
    if raw.get("model_type") == "deepseek_v3":
        loaded = _load_teacher(directory, raw, dtype, device, config, section)
    else:
        loaded = _load_transformers(directory, raw, dtype, device, config, section)
    loaded.info = ModelInfo(**{**loaded.info.__dict__, "model_id": str(path), "checkpoint": str(path)})
    return loaded


def _context(config, model_max: int, section: str) -> int:
    if config.max_context_tokens and config.max_context_tokens > model_max:
        raise InvalidArgument(f"{section}.max_context_tokens", f"{config.max_context_tokens} exceeds the model's "
                                                           f"max_position_embeddings = {model_max}")
    return config.max_context_tokens or model_max


def _load_teacher(directory, raw, dtype, device, config, section) -> LoadedModel:
    from r1.engine.teacher_runner import TeacherRunner
    from r1.model.checkpoint import load_pretrained, to_checkpoint_names
    from r1.model.tokenizer import load_tokenizer

    model = load_pretrained(directory, dtype=dtype, device=device).eval()
    c = model.config
    if config.spec_tokens and c.num_nextn_predict_layers == 0:
        raise InvalidArgument(f"{section}.spec_tokens", f"{directory} has no MTP modules (num_nextn_predict_layers "
                                                        f"= 0): set {section}.spec_tokens to 0")
    context = _context(config, c.max_position_embeddings, section)
    runner = TeacherRunner(model, config.max_num_seqs, context, config.spec_tokens, device)
    tokenizer = load_tokenizer(str(directory))
    info = ModelInfo(model_id="", architecture=(raw.get("architectures") or ["DeepseekV3ForCausalLM"])[0],
                     backend="torch", weight_version=config.weight_version, eos_token_ids=_eos(raw, c.eos_token_id),
                     bos_token_id=c.bos_token_id, pad_token_id=c.pad_token_id, max_context_tokens=context,
                     vocab_size=c.vocab_size, mtp_depth=c.num_nextn_predict_layers, spec_tokens=config.spec_tokens,
                     dtype=config.dtype, parameter_count=sum(p.numel() for p in model.parameters()))
    state = model.state_dict()
    names = to_checkpoint_names(state, c)  # checkpoint name -> copy; map back to the live tensors
    parameters = {}
    for name in names:
        ours = _teacher_name(name, c)
        parameters[name] = state[ours]
    return LoadedModel(info, model, runner, tokenizer, parameters)


def _teacher_name(name: str, config) -> str:
    """A DeepSeek-V3 checkpoint name -> our state-dict name (MTP copies of embedding and head: the shared ones)."""
    import re

    match = re.match(r"^model\.layers\.(\d+)\.(.*)$", name)
    if not match or int(match[1]) < config.num_hidden_layers:
        return name
    depth, rest = int(match[1]) - config.num_hidden_layers, match[2]
    if rest == "embed_tokens.weight":
        return "model.embed_tokens.weight"
    if rest == "shared_head.head.weight":
        return "lm_head.weight"
    if rest.startswith(("enorm.", "hnorm.", "eh_proj.")):
        return f"mtp.{depth}.{rest}"
    if rest.startswith("shared_head.norm."):
        return f"mtp.{depth}.shared_head_norm.{rest.removeprefix('shared_head.norm.')}"
    return f"mtp.{depth}.block.{rest}"


def _load_transformers(directory, raw, dtype, device, config, section) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1.engine.hf_runner import HFRunner

    if config.spec_tokens:
        raise InvalidArgument(f"{section}.spec_tokens", f"{directory} ({raw.get('model_type')}) has no MTP modules: "
                                                    "speculation is for DeepSeek-V3 checkpoints; set it to 0")
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype, local_files_only=True).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    hf = model.config
    context = _context(config, hf.max_position_embeddings, section)
    runner = HFRunner(model, config.max_num_seqs, context, device)
    eos = _eos(raw, hf.eos_token_id if hf.eos_token_id is not None else tokenizer.eos_token_id)
    info = ModelInfo(model_id="", architecture=(raw.get("architectures") or [type(model).__name__])[0],
                     backend="torch", weight_version=config.weight_version, eos_token_ids=eos,
                     bos_token_id=hf.bos_token_id, pad_token_id=hf.pad_token_id, max_context_tokens=context,
                     vocab_size=hf.vocab_size, dtype=config.dtype,
                     parameter_count=sum(p.numel() for p in model.parameters()))
    parameters = dict(model.state_dict())
    return LoadedModel(info, model, runner, tokenizer, parameters)


def _eos(raw: dict, fallback) -> tuple[int, ...]:
    value = raw.get("eos_token_id", fallback)
    values = value if isinstance(value, list) else [value if value is not None else fallback]
    return tuple(int(v) for v in values if v is not None)


def check_update(loaded: LoadedModel, tensors: Mapping[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(served tensor, new value cast to its dtype and device) per named tensor; InvalidArgument naming the
    first tensor that does not fit, before anything is applied."""
    if not tensors:
        raise InvalidArgument("tensors", "the update names no tensor")
    staged = []
    for name, tensor in tensors.items():
        target = loaded.parameters.get(name)
        if target is None:
            close = sorted(n for n in loaded.parameters if n.split(".")[-2:] == name.split(".")[-2:])[:3]
            raise InvalidArgument(f"tensors[{name}]", "is not a parameter of the served model"
                                                      + (f"; similar: {', '.join(close)}" if close else ""))
        if tuple(tensor.shape) != tuple(target.shape):
            raise InvalidArgument(f"tensors[{name}]", f"has shape {list(tensor.shape)}; the served parameter is "
                                                      f"{list(target.shape)}")
        if not tensor.dtype.is_floating_point:
            raise InvalidArgument(f"tensors[{name}]", f"has dtype {str(tensor.dtype).removeprefix('torch.')}; a "
                                                      "floating dtype is needed (it is cast to the served one)")
        value = tensor.to(dtype=target.dtype, device=target.device)
        if not bool(torch.isfinite(value).all()):  # after the cast: float8 has no isfinite of its own
            raise InvalidArgument(f"tensors[{name}]", "holds NaN or infinite values")
        staged.append((target, value))
    return staged
