"""Supervised fine-tuning through TRL's SFTTrainer: cold start, rejection-sampling SFT and distillation.

One workflow (DeepSeek-R1 section 2.3: cold-start SFT, then SFT on ~800k rejection-sampled samples; section
2.4: distillation is the same SFT of Qwen2.5 / Llama students on the teacher's samples):

1. Records: `{"prompt": str, "completion": str}` (a plain-text question and the assistant's answer, e.g.
   `r1_completion(problem)`) or `{"messages": [{"role", "content"}, ...]}` (a conversation ending in an
   assistant turn); `load_records(path)` reads them from JSONL, `problem_records(problems)` builds them
   from synthetic problems. A bad record is an InvalidArgument naming its index (or line) and key.
2. Dataset: every record becomes TRL's *conversational prompt-completion* form, `prompt` = the messages
   before the last, `completion` = [the last, assistant message]. TRL renders both with the tokenizer's chat
   template (prompt with the generation prompt), so our R1-Zero template writes the system frame, and the
   completion mask covers exactly the tokens after the rendered prompt. With `completion_only_loss` the
   labels are -100 on the prompt, so the loss is on the completion (and its eos) only. Our template's
   generation prompt ends in "Assistant: <think>", so the opening `<think>` is prompt, as at inference.
3. Trainer: TRL's SFTTrainer, fp32, no activation checkpointing, logging every step, no reporting, no hub;
   AdamW with linear warm-up then the configured schedule, gradient clipping. It runs on the device the
   model is on (`use_cpu` when that is the CPU). A TrainerCallback sends each step's metrics to `on_step`
   and stops training when `should_stop()` turns true (checked after every optimizer step).
4. Output: checkpoints every `save_steps` under `output_dir/checkpoint-<step>` (the trainer's, with
   optimizer state) and the final model in `output_dir`, both in Hugging Face layout: the teacher through
   `r1.model.checkpoint.save_pretrained` (DeepSeek-V3 layout, tokenizer included), a transformers model
   through its `save_pretrained` plus the tokenizer's.

Choices:
- Conversations are trained on their last assistant turn only (earlier turns are context). TRL's
  `assistant_only_loss` would train every assistant turn, but needs `{% generation %}` markers our
  template does not have; R1's SFT data is single-turn.
- Packing is TRL's best-fit-decreasing (`bfd`): sequences are packed, never split, into rows of
  `max_seq_len` and a batch is flattened into one padding-free row with per-sequence position ids.
  transformers models attend within each sequence from those position ids (their mask builder detects
  packing when there is no attention mask and no cache, as in training); the teacher adapter builds the
  same block-diagonal causal mask from them and runs the decoder loop of `hidden_states` with it (the
  model's own method takes a key mask only). Both are tested equal to running each sequence alone.
- Our teacher (`DeepSeekV3ForCausalLM`, a plain nn.Module) is wrapped in `TeacherForSFT`, which gives
  TRL what it reads off a transformers model: a `config`, a `generation_config`, `base_model` returning
  `last_hidden_state`, `get_output_embeddings`, a forward taking input_ids / attention_mask /
  position_ids / labels. TRL's fused LM head then computes the loss from the hidden states, so the teacher
  is trained on the main next-token loss; its MTP modules are not trained (TRL has no MTP loss) and keep
  their weights. The MoE routing bias is updated after each step as in pretraining
  (`bias_update_speed`, 0 = frozen); the load it counts includes padding tokens when not packing.
- The caller's model is trained in place; its train/eval mode and its forward are restored afterwards
  (TRL patches the forward with its fused LM head).

Not done: evaluation during training, resuming from a checkpoint (the trainer's checkpoints hold the
optimizer state, but the teacher's weights are in DeepSeek-V3 layout, which Trainer cannot read back),
mixed precision, gradient accumulation, multi-GPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets import Dataset
from torch import nn
from transformers import GenerationConfig, PreTrainedConfig, PreTrainedModel, TrainerCallback
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput
from transformers.trainer_callback import PrinterCallback
from trl import SFTConfig, SFTTrainer

from r1.data.synthetic import Problem, r1_completion
from r1.errors import InvalidArgument
from r1.model.checkpoint import save_pretrained
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM, next_token_loss
from r1.model.moe import update_routing_bias
from r1.model.rope import cos_sin

# our name -> transformers' scheduler; "constant" keeps the warm-up, as constant_with_warmup does
SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
ROLES = ("system", "user", "assistant")

StepHook = Callable[[int, dict[str, float]], None]


# ------------------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class SFTStageConfig:
    """epochs: passes over the records (used when max_steps is 0); max_steps: optimizer steps (0 = by epochs);
    batch_size: records per step (packed rows per step with packing); lr: peak learning rate (AdamW);
    warmup_steps or warmup_ratio (of the total steps, in [0, 1)): linear warm-up, at most one of them set;
    lr_scheduler: cosine | linear | constant after the warm-up; weight_decay; grad_clip: max gradient norm
    (0 = no clipping); max_seq_len: tokens per sequence (longer ones are cut at the end) or per packed row;
    packing: BFD packing, padding-free; completion_only_loss: loss on completion tokens only (else on the
    whole sequence); save_steps: checkpoint every that many steps (0 = only the final model);
    bias_update_speed: the teacher's MoE routing-bias step per optimizer step (0 = frozen; students have
    none); seed: data order and any initialisation TRL does."""

    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    max_seq_len: int = 1024
    packing: bool = False
    completion_only_loss: bool = True
    save_steps: int = 0
    bias_update_speed: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _integer("epochs", self.epochs, 1, "set how many passes over the records to make, e.g. 2")
        _integer("max_steps", self.max_steps, 0, "use 0 to train by epochs")
        _integer("batch_size", self.batch_size, 1, "a step needs at least one record")
        _number("lr", self.lr, "a positive learning rate such as 1e-5", positive=True)
        _integer("warmup_steps", self.warmup_steps, 0, "use 0 for no warm-up")
        _number("warmup_ratio", self.warmup_ratio, "a share of the steps in [0, 1), e.g. 0.03")
        if self.warmup_ratio >= 1:
            raise InvalidArgument("warmup_ratio", f"must be below 1 (a share of the steps), got {self.warmup_ratio}")
        if self.warmup_steps and self.warmup_ratio:
            raise InvalidArgument("warmup_ratio", "set either warmup_steps or warmup_ratio, not both")
        if self.lr_scheduler not in SCHEDULERS:
            raise InvalidArgument("lr_scheduler", f"unknown scheduler {self.lr_scheduler!r}; valid: "
                                                  f"{', '.join(SCHEDULERS)}")
        _number("weight_decay", self.weight_decay, "use 0 for none, or e.g. 0.1")
        _number("grad_clip", self.grad_clip, "a max gradient norm such as 1.0, or 0 for no clipping")
        _integer("max_seq_len", self.max_seq_len, 2, "a sequence needs a prompt token and a completion token")
        _boolean("packing", self.packing)
        _boolean("completion_only_loss", self.completion_only_loss)
        _integer("save_steps", self.save_steps, 0, "use 0 to save only the final model")
        _number("bias_update_speed", self.bias_update_speed, "use 0 to freeze the routing bias, or e.g. 1e-3")
        _integer("seed", self.seed, 0, "any non-negative integer")


def _integer(field: str, value: object, minimum: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(field, f"must be an integer, got {value!r}; {fix}")
    if value < minimum:
        raise InvalidArgument(field, f"must be at least {minimum}, got {value}; {fix}")


def _number(field: str, value: object, fix: str, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(field, f"must be a finite number, got {value!r}; {fix}")
    if value < 0 or (positive and value == 0):
        raise InvalidArgument(field, f"must be {'positive' if positive else 'non-negative'}, got {value}; {fix}")


def _boolean(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidArgument(field, f"must be true or false, got {value!r}")


# ------------------------------------------------------------------------------------------------ records


class RecordError(ValueError):
    """A record is malformed: `key` names the part at fault (e.g. ``messages[2].role``; "" for the whole
    record)."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


def to_prompt_completion(record: object) -> dict[str, list[dict[str, str]]]:
    """One record -> TRL's conversational prompt-completion example; RecordError when malformed.

    Accepted: {"prompt": str, "completion": str} or {"messages": [...]}, each with an optional "id"
    (for the caller's bookkeeping; dropped). Messages have a role (system, user, assistant) and string
    content; the last one is the assistant turn to learn, and at least one message precedes it."""
    if not isinstance(record, Mapping):
        raise RecordError("", f"must be a JSON object, got {type(record).__name__}")
    keys = set(record) - {"id"}
    if keys == {"prompt", "completion"}:
        return {"prompt": [{"role": "user", "content": _text(record, "prompt")}],
                "completion": [{"role": "assistant", "content": _text(record, "completion")}]}
    if keys == {"messages"}:
        messages = _messages(record["messages"])
        return {"prompt": messages[:-1], "completion": messages[-1:]}
    raise _key_error(keys)


def _key_error(keys: set[str]) -> RecordError:
    """What is wrong with a record whose keys are neither {prompt, completion} nor {messages}."""
    expected = 'a record has "prompt" and "completion", or "messages" alone (and an optional "id")'
    unknown = sorted(keys - {"prompt", "completion", "messages"})
    if unknown:
        return RecordError(unknown[0], f"unknown key; {expected}")
    if "messages" in keys:
        return RecordError("messages", f"cannot go with prompt or completion; {expected}")
    return RecordError("completion" if "prompt" in keys else "prompt", f"is missing; {expected}")


def _text(record: Mapping, key: str) -> str:
    value = record[key]
    if not isinstance(value, str) or not value:
        raise RecordError(key, f"must be a non-empty string, got {value!r}")
    return value


def _messages(messages: object) -> list[dict[str, str]]:
    if not isinstance(messages, list) or len(messages) < 2:
        raise RecordError("messages", "must be a list of at least two messages (the prompt, then the assistant "
                                      f"turn to learn), got {messages!r}")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
            raise RecordError(f"messages[{i}]", f'must be an object with exactly "role" and "content", got {message!r}')
        if message["role"] not in ROLES:
            raise RecordError(f"messages[{i}].role", f"must be one of {', '.join(ROLES)}, got {message['role']!r}")
        out.append({"role": message["role"], "content": _text(message, "content")})
    if out[-1]["role"] != "assistant":
        raise RecordError(f"messages[{len(out) - 1}].role", "the last message must be the assistant's (the "
                                                            f"completion to learn), got {out[-1]['role']!r}")
    return out


def prepare_records(records: Iterable[object]) -> list[dict[str, list[dict[str, str]]]]:
    """`to_prompt_completion` of each record; InvalidArgument ``records[i].<key>`` for the first bad one."""
    if isinstance(records, (str, bytes, Mapping)):
        raise InvalidArgument("records", "must be a list of records; pass a file through load_records(path)")
    out = []
    for i, record in enumerate(records):
        try:
            out.append(to_prompt_completion(record))
        except RecordError as e:
            raise InvalidArgument(f"records[{i}]" + (f".{e.key}" if e.key else ""), e.message) from None
    if not out:
        raise InvalidArgument("records", "is empty; SFT needs at least one record")
    return out


def load_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSONL file (one object per line, blank lines skipped), checked as `prepare_records`
    does; a bad line is an InvalidArgument on `path` naming the line number and the key."""
    records = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise InvalidArgument("path", f"line {number}: not valid JSON ({e})") from None
            try:
                to_prompt_completion(record)
            except RecordError as e:
                raise InvalidArgument("path", f"line {number}: {e if e.key else e.message}") from None
            records.append(record)
    if not records:
        raise InvalidArgument("path", f"{os.fspath(path)!r} holds no records")
    return records


def problem_records(problems: Iterable[Problem]) -> list[dict[str, str]]:
    """SFT records for synthetic problems: the question as prompt, `r1_completion` (think, then answer) as
    completion, and the problem id."""
    return [{"id": p.id, "prompt": p.prompt, "completion": r1_completion(p)} for p in problems]


# ------------------------------------------------------------------------------------------------ teacher


def packed_causal_mask(position_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Additive [B, 1, S, S] mask (0 or -inf): query i sees key j <= i of the same sequence, a sequence
    starting at every position id 0 (one per row unless packed), and only keys `attention_mask` keeps."""
    seq = position_ids.shape[1]
    segment = (position_ids == 0).cumsum(dim=-1)  # [B, S]
    allowed = segment[:, :, None] == segment[:, None, :]  # [B, S, S]
    allowed = allowed & torch.ones(seq, seq, dtype=torch.bool, device=position_ids.device).tril()
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, :]
    return torch.zeros(allowed.shape, device=position_ids.device).masked_fill(~allowed, float("-inf"))[:, None]


class TeacherForSFT(nn.Module):
    """Our DeepSeek-V3 teacher as the transformers-like causal LM that TRL's SFTTrainer drives (see the
    module docstring). `self.teacher` is the wrapped model, trained in place."""

    def __init__(self, teacher: DeepSeekV3ForCausalLM):
        super().__init__()
        self.teacher = teacher
        c = teacher.config
        self.config = PreTrainedConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size,
                                       bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
                                       pad_token_id=c.pad_token_id, tie_word_embeddings=c.tie_word_embeddings)
        self.generation_config = GenerationConfig(bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
                                                  pad_token_id=c.pad_token_id)
        self.model_tags: list[str] = []

    @property
    def base_model(self) -> Callable[..., BaseModelOutput]:
        """What TRL's fused LM head calls for the final hidden states."""
        return self.hidden_states

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      position_ids: torch.Tensor | None = None, **_: Any) -> BaseModelOutput:
        """input_ids [B, S]; attention_mask [B, S] (1 = real, right padding) or position_ids [B, S] (packed:
        restarting at 0 for each sequence). Other keyword arguments (TRL's cu_seq_lens, use_cache...) are
        ignored: the mask carries the sequence boundaries."""
        model = self.teacher
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        mask = packed_causal_mask(position_ids, attention_mask)
        cos, sin = cos_sin(model.inv_freq, position_ids, model.rope_scale)
        x = model.model.embed_tokens(input_ids)
        for layer in model.model.layers:
            x = layer(x, cos, sin, mask)
        return BaseModelOutput(last_hidden_state=model.model.norm(x))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **kwargs: Any) -> CausalLMOutput:
        """Logits [B, S, V] and, with labels (unshifted, -100 = no loss), the mean next-token loss."""
        hidden = self.hidden_states(input_ids, attention_mask, position_ids, **kwargs).last_hidden_state
        logits = self.teacher.lm_head(hidden)
        loss = None if labels is None else next_token_loss(logits[:, :-1], labels[:, 1:])
        return CausalLMOutput(loss=loss, logits=logits)

    def get_output_embeddings(self) -> nn.Linear:
        return self.teacher.lm_head

    def get_input_embeddings(self) -> nn.Embedding:
        return self.teacher.model.embed_tokens

    def add_model_tags(self, tags: list[str] | str) -> None:
        self.model_tags += [tags] if isinstance(tags, str) else list(tags)


def trainable(model: nn.Module) -> nn.Module:
    """The module SFTTrainer drives: a transformers causal LM as is, our teacher wrapped."""
    if isinstance(model, DeepSeekV3ForCausalLM):
        return TeacherForSFT(model)
    if isinstance(model, PreTrainedModel):
        return model
    raise InvalidArgument("model", f"must be a transformers causal LM or DeepSeekV3ForCausalLM, got "
                                   f"{type(model).__name__}")


def save_model(model: nn.Module, tokenizer: Any, directory: str | os.PathLike) -> Path:
    """The model and tokenizer in Hugging Face layout in `directory` (see the module docstring)."""
    directory = Path(directory)
    if isinstance(model, TeacherForSFT):
        return save_pretrained(model.teacher, directory, tokenizer=tokenizer)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# ------------------------------------------------------------------------------------------------ trainer


class _SFTTrainer(SFTTrainer):
    """SFTTrainer whose model files (checkpoints and final) are written by `save_model`."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        save_model(self.model, self.processing_class, output_dir or self.args.output_dir)


class StepCallback(TrainerCallback):
    """Per optimizer step: `after_step()` (the routing-bias update), the cancellation check, and the logged
    metrics (TRL's: loss, learning_rate, grad_norm, entropy, mean_token_accuracy, num_tokens) to
    `on_step(step, values)`, with tokens_per_second of that step added (prompt and completion tokens,
    padding excluded, over the step's wall time)."""

    def __init__(self, on_step: StepHook | None, should_stop: Callable[[], bool] | None,
                 after_step: Callable[[], None] | None):
        self.on_step, self.should_stop, self.after_step = on_step, should_stop, after_step
        self.losses: list[float] = []
        self.stopped = False
        self._started = self._tokens = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.after_step is not None:
            self.after_step()
        if self.should_stop is not None and self.should_stop():
            self.stopped = control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:  # the end-of-training summary has no loss
            return
        values = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and k != "epoch"}
        tokens = values.get("num_tokens", 0.0)
        seconds = time.perf_counter() - self._started
        values["tokens_per_second"] = (tokens - self._tokens) / seconds if seconds > 0 else 0.0
        self._tokens = tokens
        self.losses.append(values["loss"])
        if self.on_step is not None:
            self.on_step(state.global_step, values)


def routing_bias_step(model: nn.Module, speed: float) -> Callable[[], None] | None:
    """The teacher's aux-loss-free balancing step (r1.model.moe), run after every optimizer step; None
    for students and for speed 0."""
    if not isinstance(model, TeacherForSFT) or speed == 0:
        return None
    return lambda: update_routing_bias(model.teacher, speed)


def trainer_args(config: SFTStageConfig, output_dir: str | os.PathLike, on_cpu: bool) -> SFTConfig:
    """TRL's SFTConfig for our config (see the module docstring for the fixed choices)."""
    return SFTConfig(
        output_dir=os.fspath(output_dir), num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size, learning_rate=config.lr,
        lr_scheduler_type=SCHEDULERS[config.lr_scheduler], warmup_steps=config.warmup_steps or config.warmup_ratio,
        weight_decay=config.weight_decay, max_grad_norm=config.grad_clip, max_length=config.max_seq_len,
        packing=config.packing, packing_strategy="bfd", completion_only_loss=config.completion_only_loss,
        seed=config.seed, data_seed=config.seed, logging_steps=1,
        **({"save_strategy": "steps", "save_steps": config.save_steps} if config.save_steps else
           {"save_strategy": "no"}),
        report_to="none", push_to_hub=False, use_cpu=on_cpu, bf16=False, fp16=False,
        activation_checkpointing=False, disable_tqdm=True, dataloader_num_workers=0)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No `datasets` progress bars while TRL prepares the (small, in-memory) dataset; the caller's
    setting is restored after."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def build_trainer(model: nn.Module, tokenizer: Any, records: Iterable[object], config: SFTStageConfig,
                  output_dir: str | os.PathLike, callback: StepCallback | None = None) -> SFTTrainer:
    """The SFTTrainer for `model` (already `trainable`), its dataset prepared by TRL (tokenized, labels
    masked, packed): the trainer's `train_dataset` and `data_collator` are what a step sees."""
    dataset = Dataset.from_list(prepare_records(records))
    on_cpu = next(model.parameters()).device.type == "cpu"
    with _quiet_datasets():
        trainer = _SFTTrainer(model=model, args=trainer_args(config, output_dir, on_cpu), train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[callback] if callback else None)
    trainer.remove_callback(PrinterCallback)  # metrics go to on_step; nothing printed to stdout
    return trainer


def train_sft(model: nn.Module, tokenizer: Any, records: Iterable[object], config: SFTStageConfig,
              output_dir: str | os.PathLike, on_step: StepHook | None = None,
              should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """SFT of `model` (a transformers causal LM, or our DeepSeekV3ForCausalLM) on `records`, in place;
    the final model is saved to `output_dir` (also when stopped early). Returns the history: losses (one
    per step), final_loss, steps, seconds (training wall time), stopped (by should_stop)."""
    if not isinstance(config, SFTStageConfig):
        raise InvalidArgument("config", f"must be an SFTStageConfig, got {type(config).__name__}")
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        raise InvalidArgument("tokenizer", "must be a tokenizer with a chat template (it renders the records)")
    wrapped = trainable(model)
    callback = StepCallback(on_step, should_stop, routing_bias_step(wrapped, config.bias_update_speed))
    was_training = model.training
    trainer = build_trainer(wrapped, tokenizer, records, config, output_dir, callback)
    try:
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    finally:
        model.__dict__.pop("forward", None)  # TRL's fused-LM-head patch, on a transformers model
        model.train(was_training)
    trainer.save_model(os.fspath(output_dir))
    losses = callback.losses
    return {"losses": losses, "final_loss": losses[-1] if losses else math.nan, "steps": trainer.state.global_step,
            "seconds": seconds, "stopped": callback.stopped}
