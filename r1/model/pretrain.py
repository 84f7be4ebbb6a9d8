"""Pretraining the tiny teacher: one readable workflow, `r1 pretrain --recipe recipes/tiny-teacher.yaml`.

1. Data: synthetic verifiable problems (`r1/data/synthetic.py`), split into train and held-out sets that
   share no prompt. A training example is the R1-Zero chat prompt (the tokenizer's template, ending in
   "Assistant: <think>") followed by the worked solution in R1 format and eos; the loss covers the
   completion only, so the model learns to reason and answer, not to recite the frame.
2. Tokenizer: trained here on the built-in corpus plus the training texts (`r1/model/tokenizer.py`); the
   model's vocabulary is its size.
3. Model: a DeepSeek-V3 config from a preset (MTP on), trained with AdamW, linear warm-up then cosine decay,
   gradient clipping, loss = main CE + mtp_weight x MTP CE, and the auxiliary-loss-free routing-bias update
   after every step. The chat frame every example starts with is run once per batch and shared through the
   latent cache (`shared_prefix_loss`: the same loss and gradients, half the work), and batches group
   examples of similar length (`length_grouped_batches`) so that little of each batch is padding. A
   wall-clock budget (`max_minutes`) ends training early on a slow machine; the decay follows it.
4. Evaluation on the held-out set: greedy decoding (`decode.py`), answers checked by the verifier's math
   checker (strict profile: the answer must be in <answer> tags or boxed); MTP's next-next-token accuracy
   on held-out completions (how often depth 1 predicts t_{i+2}: what its speculation would accept).
5. Output: the checkpoint in DeepSeek-V3's layout with the tokenizer, `metrics.json`, `loss.png`.

Cached by content: the output directory is named by a hash of the recipe and of the code that produces the
model, so the demo and the tests reuse a teacher until either changes (`--force` retrains).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1.config import load_config
from r1.data.synthetic import TASKS, Problem, r1_completion, split
from r1.errors import InvalidArgument
from r1.model.checkpoint import load_pretrained, save_pretrained
from r1.model.config import preset
from r1.model.decode import generate
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM, shared_prefix_loss, training_loss
from r1.model.moe import update_routing_bias
from r1.model.tokenizer import default_corpus, load_tokenizer, r1_zero_prompt, train_tokenizer

log = logging.getLogger(__name__)

CODE_FILES = ("r1/model", "r1/data/synthetic.py", "r1/data/countdown.py")


@dataclass(frozen=True)
class ModelSection:
    """preset: a name from r1/model/config.py; overrides: config fields to change (vocab_size is set from
    the tokenizer)."""

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSection:
    """tasks: synthetic task names; difficulty: [low, high] per task (a task not listed: its whole range);
    n_train / n_heldout: problems, shared equally by the tasks; seed: the split's seed."""

    tasks: tuple[str, ...] = ("arithmetic", "linear", "fractions", "word", "countdown")
    difficulty: dict[str, tuple[int, int]] = field(default_factory=dict)
    n_train: int = 20_000
    n_heldout: int = 200
    seed: int = 0


@dataclass(frozen=True)
class TrainSection:
    """steps, batch_size, lr (peak), warmup_steps, min_lr_ratio (cosine floor), weight_decay, grad_clip,
    mtp_weight (lambda), bias_update_speed (gamma), max_minutes (wall-clock budget), seed, threads (torch
    intra-op threads, 0 = torch's default)."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    mtp_weight: float = 0.3
    bias_update_speed: float = 1e-3
    max_minutes: float = 10.0
    seed: int = 0
    threads: int = 0


@dataclass(frozen=True)
class EvalSection:
    """max_new_tokens per held-out answer; batch_size of the greedy decoder."""

    max_new_tokens: int = 128
    batch_size: int = 50


@dataclass(frozen=True)
class PretrainRecipe:
    model: ModelSection = field(default_factory=ModelSection)
    vocab_size: int = 1024
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)


def load_recipe(path: str | Path, overrides: list[str] = ()) -> PretrainRecipe:
    return load_config(PretrainRecipe, path, overrides=overrides)


def cache_root() -> Path:
    """$R1_CACHE_DIR, else ~/.cache/r1-stack."""
    return Path(os.environ.get("R1_CACHE_DIR") or Path.home() / ".cache" / "r1-stack")


def content_hash(recipe: PretrainRecipe) -> str:
    """sha256 of the recipe and of the code that turns it into a model, 16 hex digits."""
    digest = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True, default=list).encode())
    root = Path(__file__).resolve().parents[2]
    for entry in CODE_FILES:
        for path in sorted((root / entry).rglob("*.py")) if (root / entry).is_dir() else [root / entry]:
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:16]


def pretrain(recipe: PretrainRecipe, output: str | Path | None = None, force: bool = False,
             progress: bool = True) -> Path:
    """Trains (or reuses) the teacher; returns its checkpoint directory."""
    output = Path(output) if output else cache_root() / "teachers" / content_hash(recipe)
    if (output / "metrics.json").is_file() and not force:
        log.info("reusing the teacher in %s (same recipe and code)", output)
        return output
    _check(recipe)
    started = time.perf_counter()
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    train_set, heldout = problems(recipe.data)
    texts = [r1_zero_prompt(p.prompt) + r1_completion(p) for p in train_set]
    tokenizer = train_tokenizer(default_corpus() + texts[:5000], vocab_size=recipe.vocab_size)
    examples = encode_examples(tokenizer, train_set)
    config = preset(recipe.model.preset, **{**recipe.model.overrides, "vocab_size": len(tokenizer)})
    torch.manual_seed(recipe.train.seed)
    model = DeepSeekV3ForCausalLM(config)
    history = train(model, examples, recipe.train, tokenizer.pad_token_id, progress)
    model.eval()
    accuracy = heldout_accuracy(model, tokenizer, heldout, recipe.eval)
    metrics = {
        "heldout_accuracy": accuracy["all"], "heldout_accuracy_by_task": accuracy["by_task"],
        "mtp_next_next_token_accuracy": mtp_accuracy(model, encode_examples(tokenizer, heldout)),
        "train_seconds": history["seconds"], "total_seconds": time.perf_counter() - started,
        "steps": history["steps"], "final_loss": history["loss"][-1], "parameters": sum(
            p.numel() for p in model.parameters()), "content_hash": content_hash(recipe), "recipe": asdict(recipe),
        "threads": torch.get_num_threads(),
    }
    output.mkdir(parents=True, exist_ok=True)
    save_pretrained(model, output, tokenizer=tokenizer)
    plot_losses(history, output / "loss.png")
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, default=list) + "\n")
    return output


def problems(data: DataSection) -> tuple[list[Problem], list[Problem]]:
    """Train and held-out problems, each task at its own difficulty, split per task (no shared prompt)."""
    train_set, heldout = [], []
    for k, task in enumerate(data.tasks):
        share_train = data.n_train // len(data.tasks) + (k < data.n_train % len(data.tasks))
        share_heldout = data.n_heldout // len(data.tasks) + (k < data.n_heldout % len(data.tasks))
        levels = data.difficulty.get(task)
        got = split([task], share_train, share_heldout, data.seed, tuple(levels) if levels else None)
        train_set += got[0]
        heldout += got[1]
    return train_set, heldout


def encode_examples(tokenizer, problems: list[Problem]) -> list[tuple[list[int], int]]:
    """Token ids of prompt + completion + eos for each problem, and where its completion starts."""
    prompts = tokenizer([r1_zero_prompt(p.prompt) for p in problems])["input_ids"]
    completions = tokenizer([r1_completion(p) for p in problems], add_special_tokens=False)["input_ids"]
    return [(prompt + completion + [tokenizer.eos_token_id], len(prompt))
            for prompt, completion in zip(prompts, completions)]


def batch(examples: list[tuple[list[int], int]], pad_id: int, skip: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, T] and labels [B, T] (-100 on the prompt and the padding), leaving out the first
    `skip` tokens of every example (a shared prefix, run once)."""
    longest = max(len(ids) for ids, _ in examples) - skip
    ids = torch.full((len(examples), longest), pad_id)
    labels = torch.full((len(examples), longest), -100)
    for row, (tokens, start) in enumerate(examples):
        ids[row, :len(tokens) - skip] = torch.tensor(tokens[skip:])
        labels[row, max(start - skip, 0):len(tokens) - skip] = torch.tensor(tokens[max(start, skip):])
    return ids, labels


def length_grouped_batches(examples: list[tuple[list[int], int]], batch_size: int, rng: random.Random,
                           group: int = 16):
    """Endless random batches whose examples have similar lengths, so little of a batch is padding: draw
    `group` x batch_size examples at random, sort them by length, cut them into `group` batches and yield
    those in random order (transformers' `group_by_length`, megabatches of LengthGroupedSampler). Every
    example is as likely to be drawn as with plain random batches; only which examples share a batch changes."""
    while True:
        drawn = sorted(rng.sample(examples, min(len(examples), group * batch_size)), key=lambda e: len(e[0]))
        chunks = [drawn[i:i + batch_size] for i in range(0, len(drawn) - batch_size + 1, batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def common_prefix(examples: list[tuple[list[int], int]]) -> list[int]:
    """The longest token prefix every example's prompt starts with (the chat frame), at least one token short
    of the shortest prompt."""
    first, _ = examples[0]
    length = min(start for _, start in examples) - 1
    for tokens, _ in examples[1:]:
        while length > 0 and tokens[:length] != first[:length]:
            length -= 1
    return first[:max(length, 0)]


def learning_rate(step: int, config: TrainSection, time_spent: float = 0.0) -> float:
    """Linear warm-up to lr, then cosine down to lr x min_lr_ratio at the last step. `time_spent` is the share
    of the wall-clock budget used so far: on a machine too slow to run all the steps within the budget, the
    decay follows whichever of steps and time is further along, so that training still ends annealed instead
    of cut off at a high rate (tiny models gain much of their accuracy in the tail of the decay). A machine
    on pace to finish the steps follows the steps alone: the clock never touches the schedule, so every such
    machine trains the same model (a tiny model's accuracy is chaotic in its schedule: two 1,200-step runs
    whose decay differed by a millionth for a few steps ended at 29% and 37.5%)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    on_pace = time_spent * config.steps / max(step, 1) <= 1.0  # projected share of the budget for all steps
    if not on_pace:
        progress = max(progress, time_spent)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(model: DeepSeekV3ForCausalLM, examples: list[tuple[list[int], int]], config: TrainSection, pad_id: int,
          progress: bool = True) -> dict[str, Any]:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
    rng = random.Random(config.seed)
    batches = length_grouped_batches(examples, config.batch_size, rng)
    prefix = common_prefix(examples)
    history: dict[str, Any] = {"loss": [], "main": [], "mtp": [], "steps": 0, "shared_prefix_tokens": len(prefix)}
    started = time.perf_counter()
    model.train()
    bar = _progress(config.steps) if progress else None
    for step in range(config.steps):
        time_spent = (time.perf_counter() - started) / (config.max_minutes * 60)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config, time_spent)
        ids, labels = batch(next(batches), pad_id, skip=len(prefix))
        if prefix:
            loss, parts = shared_prefix_loss(model, torch.tensor(prefix), ids, labels, config.mtp_weight)
        else:
            loss, parts = training_loss(model, ids, labels, config.mtp_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_routing_bias(model, config.bias_update_speed)
        history["loss"].append(loss.item())
        history["main"].append(parts["main"])
        history["mtp"].append(parts.get("mtp1", float("nan")))
        history["steps"] = step + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", mtp=f"{history['mtp'][-1]:.3f}")
        if time.perf_counter() - started > config.max_minutes * 60:
            log.warning("stopping at step %d: the %.1f-minute budget is spent", step + 1, config.max_minutes)
            break
    if bar is not None:
        bar.close()
    history["seconds"] = time.perf_counter() - started
    return history


def heldout_accuracy(model: DeepSeekV3ForCausalLM, tokenizer, problems: list[Problem],
                     config: EvalSection) -> dict[str, Any]:
    """Greedy answers checked by the strict math checker: overall and per task."""
    from r1.rewards.math import MathChecker, Profile

    correct: dict[str, list[bool]] = {}
    with MathChecker(pool_size=1) as checker:
        for start in range(0, len(problems), config.batch_size):
            chunk = problems[start:start + config.batch_size]
            prompts = [tokenizer(r1_zero_prompt(p.prompt))["input_ids"] for p in chunk]
            outputs = generate(model, prompts, config.max_new_tokens, tokenizer.eos_token_id, tokenizer.pad_token_id)
            for problem, tokens in zip(chunk, outputs):
                response = tokenizer.decode(tokens, skip_special_tokens=True)
                reference = reference_answer(problem)
                verdict = checker.check(response, reference, Profile.STRICT).verdict.value
                correct.setdefault(problem.task, []).append(verdict == "CORRECT")
    every = [ok for oks in correct.values() for ok in oks]
    return {"all": sum(every) / len(every), "by_task": {t: sum(v) / len(v) for t, v in sorted(correct.items())}}


def reference_answer(problem: Problem) -> str:
    """The gold answer to check against (countdown: the target value, which any valid expression equals)."""
    from r1.data.synthetic import countdown_puzzle

    return str(countdown_puzzle(problem)[1]) if problem.task == "countdown" else problem.answer


@torch.no_grad()
def mtp_accuracy(model: DeepSeekV3ForCausalLM, examples: list[tuple[list[int], int]]) -> float:
    """Share of completion positions where MTP depth 1 predicts t_{i+2} exactly (argmax)."""
    hits = total = 0
    for tokens, start in examples:
        ids = torch.tensor([tokens])
        out = model(ids)
        depth1 = model.mtp_logits(model.mtp_hidden(ids, out.hidden)[0], 1)  # [1, T-1, V]; i predicts t_{i+2}
        predicted = depth1[0, :-1].argmax(-1)  # positions 0..T-3
        targets = ids[0, 2:]
        span = slice(max(start - 2, 0), None)  # predictions of completion tokens
        hits += int((predicted[span] == targets[span]).sum())
        total += targets[span].numel()
    return hits / max(total, 1)


def plot_losses(history: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(history["main"], label="main next-token CE")
    axis.plot(history["mtp"], label="MTP depth-1 CE")
    axis.set_xlabel("step")
    axis.set_ylabel("loss (completion tokens)")
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def load_teacher(directory: str | Path) -> tuple[DeepSeekV3ForCausalLM, Any]:
    """The model and tokenizer of a pretrained teacher directory."""
    return load_pretrained(directory).eval(), load_tokenizer(str(directory))


def _check(recipe: PretrainRecipe) -> None:
    unknown = sorted(set(recipe.data.tasks) - set(TASKS))
    if unknown:
        raise InvalidArgument("data.tasks", f"unknown tasks {unknown}; valid: {', '.join(TASKS)}")
    t = recipe.train
    for name in ("steps", "batch_size"):
        if getattr(t, name) < 1:
            raise InvalidArgument(f"train.{name}", f"must be at least 1, got {getattr(t, name)}")
    if t.batch_size > recipe.data.n_train:
        raise InvalidArgument("train.batch_size", f"exceeds data.n_train = {recipe.data.n_train}")
    if not t.lr > 0 or not t.max_minutes > 0:
        raise InvalidArgument("train.lr", "lr and max_minutes must be positive")


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="pretraining", unit="step", dynamic_ncols=True)


__all__ = ["PretrainRecipe", "load_recipe", "pretrain", "content_hash", "load_teacher"]
