"""GRPO, R1-Zero style: one readable workflow (DeepSeekMath's GRPO, DeepSeek-R1 section 2.2).

Each step:
1. sample `prompts_per_step` training problems, render each in the R1-Zero prompt;
2. rollouts: `group_size` completions per prompt from the generation backend (T, top-p as configured);
3. rewards: the verifier checks each completion's answer (strict math profile: `<answer>` or boxed), the
   reward spec adds the format term (`r1-zero` = accuracy + format);
4. advantages per group (`advantages.py`; mean-centred for Dr. GRPO);
5. the policy's log-probabilities of the completions (`logprobs.py`), before the update (pi_old) and, for
   each of `mu` inner updates, with gradients; the loss variant (`losses.py`), AdamW, gradient clipping;
6. the MoE routing-bias update (aux-loss-free balancing, as in pretraining);
   (with dynamic sampling, step 2-3 repeat on further prompts until enough groups have unequal rewards)
7. the new weights go to the generation backend as version + 1 (`update_weights`), so the next rollouts
   are on-policy; every sample reports the version that produced it.
Held-out pass@1 (k samples per problem at the evaluation temperature) is measured before the first step,
every `eval.every` steps and after the last.

The backends are duck-typed so the same loop runs in-process and through the services: `generation` has
`generate(prompt_ids, n=, sampling=) -> [SampleOutput]` and `update_weights(version, tensors)` (the
generation service's client, or `LocalGeneration` over a TorchEngine); `verifier` has
`verify_batch(items) -> Verified...` (the library's `Verifier`, or the verifier service's client).
Checkpoints (`r1.rl.checkpoint`) carry everything a resumed run needs to continue exactly as an
uninterrupted one: weights, optimizer, the data cursor (`PromptStream`), RNG states and the history; rollout
seeds derive from the step, so a resumed step samples what the first attempt sampled.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from r1.data.synthetic import Problem
from r1.engine.types import GenerationRequest, SampleOutput, SamplingParams
from r1.model.checkpoint import to_checkpoint_names
from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM
from r1.model.moe import update_routing_bias
from r1.model.pretrain import reference_answer
from r1.model.tokenizer import r1_zero_prompt
from r1.errors import InvalidArgument
from r1.rewards.items import Item, MathCheck
from r1.rewards.math import Profile
from r1.rewards.spec import RewardSpec, score
from r1.rl import advantages as adv
from r1.rl import losses
from r1.rl.checkpoint import (TrainingState, latest_checkpoint, load_policy_weights, load_state, restore_rng,
                              rng_states, save_checkpoint)
from r1.rl.logprobs import completion_logprobs

log = logging.getLogger(__name__)

REFLECTION_WORDS = ("wait", "re-check", "recheck", "verify", "double-check", "let me check", "mistake")


@dataclass(frozen=True)
class GRPOConfig:
    """steps, prompts_per_step, group_size (G), mu (inner updates per batch); lr with `warmup_steps` of linear
    warm-up then constant (RL recipes keep it flat: TRL's and verl's GRPO defaults), weight_decay, grad_clip;
    loss: grpo | dapo | dr_grpo; epsilon_low / epsilon_high (equal for grpo and dr_grpo), beta (KL to the
    frozen reference, k3); temperature, top_p, max_tokens of the rollouts; dynamic_sampling: DAPO's filter
    (groups with all-equal rewards are dropped and more prompts sampled, up to `max_refills` extra rounds per
    step); overlong_buffer: DAPO's soft overlong penalty over the last that many tokens (0: off);
    rollout_concurrency: prompts in flight together (1 makes the engine's batches, hence the run,
    reproducible bit for bit); async_rollouts: one-step off-policy pipelining (verl's one-step-off-policy
    trainer, AReaL and PipelineRL allow more staleness): step t + 1's rollouts are sampled by the served policy
    (one update behind) while step t trains, so a step takes the longer of the two instead of their sum; the
    clipped ratio is then taken against that behaviour policy, whose log-probs the trainer recomputes from a
    snapshot of its weights (exact, whatever the backend); the pipeline drains before every checkpoint, so a
    resumed run still repeats an uninterrupted one; skip_zero_variance: the probability with which the data
    cursor passes over a prompt whose last group had zero reward variance (`PromptStream`; 0: off);
    bias_update_speed; seed; max_minutes: wall-clock budget
    for the steps; checkpoint_every: steps between checkpoints (0: only the final one), keep_checkpoints: how
    many to keep."""

    steps: int = 40
    prompts_per_step: int = 16
    group_size: int = 8
    mu: int = 1
    lr: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    loss: str = "dapo"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.28
    beta: float = 0.0
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 96
    dynamic_sampling: bool = True
    max_refills: int = 2
    overlong_buffer: int = 0
    rollout_concurrency: int = 16
    async_rollouts: bool = False
    skip_zero_variance: float = 0.0
    bias_update_speed: float = 1e-3
    seed: int = 0
    max_minutes: float = 10.0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2

    def check(self, section: str = "grpo") -> None:
        """Every field in range, else InvalidArgument naming `section.field`."""
        positive = ("steps", "prompts_per_step", "mu", "max_tokens", "rollout_concurrency")
        for name in positive:
            _require(section, name, getattr(self, name) >= 1, "must be >= 1")
        _require(section, "group_size", self.group_size >= 2, "must be >= 2 (advantages compare samples within "
                                                              "a group)")
        for name in ("warmup_steps", "weight_decay", "beta", "max_refills", "overlong_buffer", "checkpoint_every",
                     "bias_update_speed"):
            _require(section, name, getattr(self, name) >= 0, "must be >= 0")
        _require(section, "lr", self.lr > 0, "must be > 0")
        _require(section, "grad_clip", self.grad_clip > 0, "must be > 0")
        _require(section, "loss", self.loss in LOSSES, f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        _require(section, "epsilon_low", 0 < self.epsilon_low < 1, "must be in (0, 1)")
        _require(section, "epsilon_high", self.epsilon_high >= self.epsilon_low,
                 f"must be >= epsilon_low = {self.epsilon_low}")
        _require(section, "temperature", self.temperature > 0, "must be > 0 (rollouts are sampled)")
        _require(section, "top_p", 0 < self.top_p <= 1, "must be in (0, 1]")
        _require(section, "overlong_buffer", self.overlong_buffer <= self.max_tokens,
                 f"must be <= max_tokens = {self.max_tokens}")
        _require(section, "skip_zero_variance", 0 <= self.skip_zero_variance < 1,
                 "must be in [0, 1) (a prompt passed over for good would never be re-tested)")
        _require(section, "max_minutes", self.max_minutes > 0, "must be > 0")
        _require(section, "keep_checkpoints", self.keep_checkpoints >= 1, "must be >= 1")


@dataclass(frozen=True)
class EvalConfig:
    """Held-out pass@1: k samples per problem at temperature / top_p (the R1 protocol: 0.6 / 0.95); problems:
    how many of the held-out set (0: evaluation off); every: steps between evaluations (0: before and after
    only)."""

    problems: int = 100
    k: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 96
    every: int = 0

    def check(self, section: str = "eval") -> None:
        for name in ("problems", "every"):
            _require(section, name, getattr(self, name) >= 0, "must be >= 0")
        for name in ("k", "max_tokens"):
            _require(section, name, getattr(self, name) >= 1, "must be >= 1")
        _require(section, "temperature", self.temperature >= 0, "must be >= 0")
        _require(section, "top_p", 0 < self.top_p <= 1, "must be in (0, 1]")


def _require(section: str, name: str, ok: bool, why: str) -> None:
    if not ok:
        raise InvalidArgument(f"{section}.{name}", why)


@dataclass
class StepMetrics:
    step: int
    reward_mean: float
    reward_std: float
    accuracy: float
    format_rate: float
    length_mean: float
    length_max: int
    zero_variance_groups: float
    kl: float
    clip_fraction: float
    entropy: float
    reflection_rate: float
    loss: float = 0.0
    grad_norm: float = 0.0
    learning_rate: float = 0.0
    language: float = 0.0
    groups_used: int = 0
    prompts_skipped: int = 0
    tokens_per_second: float = 0.0
    sync_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    version: int = 0
    wall_seconds: float = 0.0

    def values(self) -> dict[str, float]:
        """Flat name -> number (the trainer service's StepMetrics.values, the metrics log). step_seconds is the
        step's wall time: with async rollouts, generation and verify overlap train, so the parts add up to more."""
        flat = {k: float(v) for k, v in asdict(self).items() if k not in ("seconds", "step", "wall_seconds")}
        flat.update({f"{k}_seconds": v for k, v in self.seconds.items()})
        flat["step_seconds"] = self.wall_seconds or sum(self.seconds.values())
        return flat


class PromptStream:
    """The data cursor: training problems in a fresh seeded shuffle per epoch, taken in order. Its state is
    (epoch, position, the prompts last seen with zero reward variance), saved in checkpoints so a resumed run
    draws the same prompts as an uninterrupted one.

    skip_zero_variance: pre-rollout filtering (GRESO, Zheng et al. 2025, "Act Only When It Pays"): a prompt
    whose last group had all-equal rewards will most likely have them again (solved, or still out of reach),
    so when the stream comes back to it, it is passed over with this probability and sampled otherwise; a
    group that is informative again clears the mark. Dynamic sampling then spends fewer rounds on groups it
    would drop. The draw is a hash of (seed, epoch, position): no random state to save."""

    def __init__(self, problems: list[Problem], seed: int, skip_zero_variance: float = 0.0):
        if not problems:
            raise InvalidArgument("data", "the training set is empty")
        self.problems, self.seed, self.skip_zero_variance = problems, seed, skip_zero_variance
        self._index = {p.id: i for i, p in enumerate(problems)}
        self.epoch, self.position = 0, 0
        self.zero_variance: set[int] = set()
        self.skipped = 0  # prompts passed over so far
        self._order = self._shuffled(0)

    def _shuffled(self, epoch: int) -> list[int]:
        order = list(range(len(self.problems)))
        random.Random(f"{self.seed}-{epoch}").shuffle(order)
        return order

    def _passes_over(self, index: int) -> bool:
        if index not in self.zero_variance or not self.skip_zero_variance:
            return False
        draw = random.Random(f"{self.seed}-{self.epoch}-{self.position}-skip").random()
        return draw < self.skip_zero_variance

    def take(self, k: int) -> list[Problem]:
        taken = []
        while len(taken) < k:
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._shuffled(self.epoch)
            index = self._order[self.position]
            if self._passes_over(index):
                self.skipped += 1
            else:
                taken.append(self.problems[index])
            self.position += 1
        return taken

    def record(self, problems: list[Problem], zero_variance: list[bool]) -> None:
        """What each problem's group looked like this time."""
        for problem, zero in zip(problems, zero_variance):
            index = self._index[problem.id]
            if zero:
                self.zero_variance.add(index)
            else:
                self.zero_variance.discard(index)

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "zero_variance": sorted(self.zero_variance),
                "skipped": self.skipped}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self.zero_variance = set(state.get("zero_variance", ()))  # absent in checkpoints older than the field
        self.skipped = state.get("skipped", 0)
        self._order = self._shuffled(self.epoch)


def rollout(generation, tokenizer, problems: list[Problem], n: int, sampling: SamplingParams,
            threads: int = 16) -> tuple[list[list[int]], list[list[SampleOutput]]]:
    """Prompt ids per problem and n samples each, `threads` requests in flight together (the engine batches
    them). Each prompt's samples get seeds derived from its position, so results do not depend on timing."""
    prompts = [tokenizer(r1_zero_prompt(p.prompt))["input_ids"] for p in problems]
    seeded = [sampling if sampling.seed is None else replace(sampling, seed=sampling.seed + 1000 * i)
              for i in range(len(prompts))]
    with ThreadPoolExecutor(max(1, min(threads, len(prompts)))) as pool:
        outputs = list(pool.map(lambda a: generation.generate(a[0], n=n, sampling=a[1]), zip(prompts, seeded)))
    return prompts, outputs


@dataclass
class Rewards:
    """Per sample, in rollout order [P * G]: the weighted total and each term."""

    total: torch.Tensor
    accuracy: torch.Tensor
    format: torch.Tensor
    language: torch.Tensor


def rewards_of(verifier, spec: RewardSpec, problems: list[Problem], outputs: list[list[SampleOutput]]) -> Rewards:
    texts = [(p, s.text) for p, samples in zip(problems, outputs) for s in samples]
    items = [Item(text, MathCheck(reference_answer(p), Profile.STRICT), id=str(i)) for i, (p, text) in enumerate(texts)]
    results = {int(v.id): v.result for v in verifier.verify_batch(items)}
    scored = [score(spec, text, results[i]) for i, (_, text) in enumerate(texts)]
    terms = lambda name: torch.tensor([s.terms.get(name, 0.0) for s in scored])  # noqa: E731
    return Rewards(torch.tensor([s.total for s in scored]), terms("accuracy"), terms("format"), terms("language"))


def pass_at_1(generation, verifier, tokenizer, problems: list[Problem], config: EvalConfig, seed: int) -> float:
    """Mean accuracy of k samples per problem; NaN for no problems (evaluation off)."""
    if not problems:
        return float("nan")
    sampling = SamplingParams(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens,
                              seed=seed)
    _, outputs = rollout(generation, tokenizer, problems, config.k, sampling)
    return float(rewards_of(verifier, RewardSpec(), problems, outputs).accuracy.mean())


def upper_epsilon(config: GRPOConfig) -> float:
    """The ratio's upper clip: DAPO's clip-higher epsilon_high; GRPO and Dr. GRPO clip symmetrically."""
    return config.epsilon_high if config.loss == "dapo" else config.epsilon_low


def policy_loss(config: GRPOConfig, logprobs, old, ref, advantages, mask) -> torch.Tensor:
    if config.loss == "grpo":
        return losses.grpo_loss(logprobs, old, ref, advantages, mask, config.epsilon_low, config.beta)
    if config.loss == "dapo":
        return losses.dapo_loss(logprobs, old, advantages, mask, config.epsilon_low, config.epsilon_high, ref,
                                config.beta)
    return losses.dr_grpo_loss(logprobs, old, advantages, mask, config.max_tokens, config.epsilon_low, ref,
                               config.beta)


LOSSES = ("grpo", "dapo", "dr_grpo")


@dataclass
class Batch:
    """The groups one step trains on, and what the first sampling round looked like (for the metrics)."""

    problems: list[Problem]
    prompts: list[list[int]]
    outputs: list[list[SampleOutput]]
    rewards: Rewards
    sampled: Sampled
    zero_variance_share: float
    seconds: dict[str, float]
    prompts_skipped: int = 0


@dataclass
class Sampled:
    """Every sample a step drew, over all its rounds, and their rewards."""

    samples: list[SampleOutput]
    rewards: Rewards


def collect(generation, verifier, tokenizer, spec: RewardSpec, stream: PromptStream, config: GRPOConfig,
            step: int) -> Batch:
    """Rollouts and rewards for one step. With dynamic sampling, groups whose rewards are all equal are
    dropped and further rounds of prompts sampled until `prompts_per_step` informative groups are found or
    `max_refills` rounds are spent (then the step trains on what it has; if nothing, on the last round as
    is, whose advantages are all zero)."""
    kept: list[tuple[Problem, list[int], list[SampleOutput], int]] = []
    rewards_kept: list[Rewards] = []
    drawn: list[SampleOutput] = []
    drawn_rewards: list[Rewards] = []
    first_zero_share = 0.0
    seconds = {"generation": 0.0, "verify": 0.0}
    skipped_before = stream.skipped
    for round_ in range(1 + (config.max_refills if config.dynamic_sampling else 0)):
        problems = stream.take(config.prompts_per_step)
        sampling = SamplingParams(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens,
                                  seed=step * 100_003 + round_ * 7_919)
        tick = time.perf_counter()
        prompts, outputs = rollout(generation, tokenizer, problems, config.group_size, sampling,
                                   config.rollout_concurrency)
        seconds["generation"] += time.perf_counter() - tick
        tick = time.perf_counter()
        rewards = shaped(rewards_of(verifier, spec, problems, outputs), outputs, config)
        seconds["verify"] += time.perf_counter() - tick
        drawn += [s for samples in outputs for s in samples]
        drawn_rewards.append(rewards)
        zero = adv.zero_variance_groups(rewards.total, config.group_size)
        stream.record(problems, zero.tolist())
        if round_ == 0:
            first_zero_share = float(zero.float().mean())
        keep = [i for i in range(len(problems)) if not (config.dynamic_sampling and zero[i])]
        need = config.prompts_per_step - len(kept)
        for i in keep[:need]:
            kept.append((problems[i], prompts[i], outputs[i], len(rewards_kept)))
        rewards_kept.append(_rows(rewards, keep[:need], config.group_size))
        if len(kept) == config.prompts_per_step:
            break
    if not kept:  # nothing informative: train on the last round (a no-op update) rather than skip the step
        kept = [(p, ids, out, 0) for p, ids, out in zip(problems, prompts, outputs)]
        rewards_kept = [rewards]
    return Batch([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], _concat(rewards_kept),
                 Sampled(drawn, _concat(drawn_rewards)), first_zero_share, seconds, stream.skipped - skipped_before)


REWARD_TERMS = ("total", "accuracy", "format", "language")


def _concat(parts: list[Rewards]) -> Rewards:
    return Rewards(*(torch.cat([getattr(r, f) for r in parts]) for f in REWARD_TERMS))


def shaped(rewards: Rewards, outputs: list[list[SampleOutput]], config: GRPOConfig) -> Rewards:
    """DAPO's soft overlong penalty added to the total, when configured."""
    if not config.overlong_buffer:
        return rewards
    lengths = torch.tensor([len(s.token_ids) for samples in outputs for s in samples])
    return replace(rewards, total=rewards.total + adv.overlong_penalty(lengths, config.max_tokens,
                                                                       config.overlong_buffer))


def _rows(rewards: Rewards, groups: list[int], group_size: int) -> Rewards:
    index = torch.tensor([g * group_size + j for g in groups for j in range(group_size)], dtype=torch.long)
    return Rewards(*(getattr(rewards, f)[index] for f in REWARD_TERMS))


def learning_rate(step: int, config: GRPOConfig) -> float:
    """Linear warm-up over `warmup_steps` (step is 1-based), then constant."""
    return config.lr * min(1.0, step / config.warmup_steps) if config.warmup_steps else config.lr


def optimizer_for(model, config: GRPOConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))


@dataclass
class Update:
    """What one policy update measured, for the step's metrics."""

    logprobs: torch.Tensor
    old: torch.Tensor
    ref: torch.Tensor | None
    advantages: torch.Tensor
    mask: torch.Tensor
    logits: torch.Tensor
    loss: float
    grad_norm: float
    tokens: int


def update_policy(model, optimizer, batch: Batch, config: GRPOConfig, ref_model, pad: int, eos: int,
                  step: int, behaviour=None) -> Update:
    """Advantages, pi_old (and the reference's) log-probs, `mu` clipped updates with gradient clipping, then
    the MoE routing-bias update. behaviour: a model holding the weights that sampled the batch when they are
    not the policy's (async rollouts); pi_old is then its log-probs."""
    group_advantages = (adv.centred_advantages(batch.rewards.total, config.group_size) if config.loss == "dr_grpo"
                        else adv.grpo_advantages(batch.rewards.total, config.group_size))
    row_prompts = [p for p in batch.prompts for _ in range(config.group_size)]
    completions = [list(s.token_ids) or [eos] for samples in batch.outputs for s in samples]
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, config)
    model.train()
    with torch.no_grad():  # pi_old: with one inner update of on-policy samples it is the policy itself, detached
        if behaviour is not None:
            old = completion_logprobs(behaviour.train(), row_prompts, completions, pad)[0]
        else:
            old = completion_logprobs(model, row_prompts, completions, pad)[0] if config.mu > 1 else None
        ref = completion_logprobs(ref_model, row_prompts, completions, pad)[0] if ref_model is not None else None
    for _ in range(config.mu):
        logprobs, mask, logits = completion_logprobs(model, row_prompts, completions, pad, with_logits=True)
        old = logprobs.detach() if old is None else old
        loss = policy_loss(config, logprobs, old, ref, group_advantages, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
    update_routing_bias(model, config.bias_update_speed)
    model.eval()
    return Update(logprobs.detach(), old, ref, group_advantages, mask, logits.detach(), loss.item(),
                  float(grad_norm), int(mask.sum()))


def train(model, tokenizer, generation, verifier, train_set: list[Problem], heldout: list[Problem],
          config: GRPOConfig, evaluation: EvalConfig, spec: RewardSpec = RewardSpec(accuracy=1.0, format=1.0),
          ref_model=None, on_step: Callable[[StepMetrics], None] | None = None, checkpoints: str | Path | None = None,
          should_stop: Callable[[], bool] = lambda: False,
          on_checkpoint: Callable[[Path, int, int, bool], None] | None = None,
          on_evaluation: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
    """Runs GRPO on `model` (trained in place); returns pass@1 before/after, per-step metrics, evaluations.

    checkpoints: a directory for `r1.rl.checkpoint` checkpoints (every `checkpoint_every` steps and at the
    end); if it already holds one, the run resumes from it: weights, optimizer, data cursor, RNG states and
    history restored, the weights pushed to the generation backend, and the remaining steps run as an
    uninterrupted run would have run them. should_stop: polled after each step; True ends the run early (with
    a final checkpoint), as a cancelled job does. on_checkpoint(path, step, version, final) after each save;
    on_evaluation(step, weight_version, pass_at_1) after each held-out evaluation."""
    config.check()
    evaluation.check()
    if config.beta and ref_model is None:
        raise InvalidArgument("grpo.beta", "beta > 0 needs the frozen reference model")
    optimizer = optimizer_for(model, config)
    stream = PromptStream(train_set, config.seed, config.skip_zero_variance)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    heldout = heldout[:evaluation.problems]
    history: dict[str, Any] = {"steps": [], "evaluations": [], "seconds": 0.0}
    version, first = 0, 1
    resumed = latest_checkpoint(checkpoints) if checkpoints is not None else None
    if resumed is not None:
        state = load_state(resumed)
        load_policy_weights(model, resumed)
        optimizer.load_state_dict(state.optimizer)
        stream.restore(state.cursor)
        restore_rng(state.rng)
        history, first = state.history, state.step + 1
        log.info("resuming from %s (step %d)", resumed, state.step)
        version = push_weights(generation, model, served_version(generation, state.version) + 1)
    else:
        version = served_version(generation, 0)

    def evaluated(at_step: int) -> None:
        value = pass_at_1(generation, verifier, tokenizer, heldout, evaluation, seed=10_000)
        history["evaluations"].append((at_step, value))
        if on_evaluation is not None and heldout:
            on_evaluation(at_step, version, value)

    if not history["evaluations"]:
        evaluated(0)
        history["pass_at_1_before"] = history["evaluations"][0][1]
    started, spent_before = time.perf_counter(), history["seconds"]
    step = first - 1
    with Rollouts(generation, verifier, tokenizer, spec, stream, config, model) as rollouts:
        for step in range(first, config.steps + 1):
            step_started = time.perf_counter()
            batch, behaviour = rollouts.batch_for(step)
            if config.async_rollouts and not checkpoint_due(config, step):
                rollouts.prefetch(step + 1)
            timings, tick = dict(batch.seconds), time.perf_counter()
            update = update_policy(model, optimizer, batch, config, ref_model, pad, eos, step, behaviour)
            timings["train"], tick = time.perf_counter() - tick, time.perf_counter()
            waited = rollouts.settle()  # the next batch is sampled before the weights change
            if config.async_rollouts:
                timings["rollout_wait"] = waited
            tick = time.perf_counter()
            version, sync_bytes = push_weights(generation, model, version + 1), tensor_bytes(model)
            timings["sync"] = time.perf_counter() - tick
            metrics = step_metrics(step, batch, update, config, timings, version, sync_bytes,
                                   wall=time.perf_counter() - step_started)
            history["steps"].append(metrics)
            if on_step is not None:
                on_step(metrics)
            if evaluation.every and step % evaluation.every == 0 and heldout:
                evaluated(step)
            history["seconds"] = spent_before + time.perf_counter() - started
            stop = should_stop() or history["seconds"] > config.max_minutes * 60
            if stop:
                rollouts.discard()  # the prompts of a batch that will not train go back to the cursor
            if checkpoints is not None and (stop or checkpoint_due(config, step)):
                save(checkpoints, model, tokenizer, optimizer, stream, history, step, version, config,
                     final=stop or step == config.steps, on_checkpoint=on_checkpoint)
            if stop:
                log.warning("stopping after step %d (%s)", step, "asked to" if should_stop() else "time budget spent")
                break
    if heldout and (not history["evaluations"] or history["evaluations"][-1][0] != step):
        evaluated(step)
    history["pass_at_1_after"] = history["evaluations"][-1][1] if history["evaluations"] else float("nan")
    return history


def save(root, model, tokenizer, optimizer, stream, history, step, version, config, final, on_checkpoint) -> Path:
    state = TrainingState(step=step, version=version, optimizer=optimizer.state_dict(), scheduler=None,
                          rng=rng_states(), cursor=stream.state(), history=history)
    path = save_checkpoint(root, model, state, tokenizer, keep=config.keep_checkpoints)
    if on_checkpoint is not None:
        on_checkpoint(path, step, version, final)
    return path


def served_version(generation, fallback: int) -> int:
    """The weight version the backend serves now (a restarted trainer continues above it)."""
    info = getattr(generation, "model_info", None)
    return max(fallback, info().weight_version) if callable(info) else fallback


def push_weights(generation, model, version: int) -> int:
    """Sends the policy as `version` (one above the served one) and returns it."""
    generation.update_weights(version, served_tensors(model))
    return version


def tensor_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def served_tensors(model) -> dict[str, torch.Tensor]:
    """The policy's weights under the names the generation backend loads: DeepSeek-V3 checkpoint names for
    our teacher, the state dict itself for a transformers student (its names already are the checkpoint's)."""
    if isinstance(model, DeepSeekV3ForCausalLM):
        return to_checkpoint_names(model.state_dict(), model.config)
    return {name: tensor.detach().contiguous().clone() for name, tensor in model.state_dict().items()}


def step_metrics(step: int, batch: Batch, update: Update, config: GRPOConfig, timings: dict[str, float],
                 version: int, sync_bytes: int, wall: float = 0.0) -> StepMetrics:
    """Rewards, lengths and reflection words over every sample drawn this step (dropped groups included, so
    they describe the policy, not the filter); loss-side diagnostics over the groups trained on."""
    sampled = batch.sampled
    lengths = [len(s.token_ids) for s in sampled.samples]
    texts = [s.text.lower() for s in sampled.samples]
    kl = float(losses.token_mean(losses.kl_k3(update.logprobs, update.ref), update.mask)) if update.ref is not None \
        else 0.0
    return StepMetrics(
        step=step, reward_mean=float(sampled.rewards.total.mean()), reward_std=float(sampled.rewards.total.std()),
        accuracy=float(sampled.rewards.accuracy.mean()), format_rate=float(sampled.rewards.format.mean()),
        language=float(sampled.rewards.language.mean()), length_mean=sum(lengths) / len(lengths),
        length_max=max(lengths), zero_variance_groups=batch.zero_variance_share, kl=kl,
        clip_fraction=losses.clip_fraction(update.logprobs, update.old, update.advantages, update.mask,
                                           config.epsilon_low, upper_epsilon(config)),
        entropy=losses.token_entropy(update.logits, update.mask),
        reflection_rate=sum(any(w in t for w in REFLECTION_WORDS) for t in texts) / len(texts),
        loss=update.loss, grad_norm=update.grad_norm, learning_rate=learning_rate(step, config),
        groups_used=len(batch.problems), prompts_skipped=batch.prompts_skipped,
        tokens_per_second=sum(lengths) / max(timings["generation"], 1e-9),
        sync_bytes=sync_bytes, seconds=timings, version=version, wall_seconds=wall)


class LocalGeneration:
    """The generation side in-process: a started TorchEngine on its own event-loop thread, with the blocking
    `generate` / `update_weights` calls of the service's client."""

    def __init__(self, engine):
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="r1-local-generation", daemon=True)
        self._thread.start()
        self._run(engine.start())
        self._counter = 0
        self._lock = threading.Lock()

    def _run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def generate(self, prompt_ids, *, n: int = 1, sampling: SamplingParams = SamplingParams()) -> list[SampleOutput]:
        with self._lock:
            self._counter += 1
            request_id = f"grpo-{self._counter}"

        async def collect():
            request = GenerationRequest(request_id, tuple(prompt_ids), n=n, sampling=sampling)
            outputs = [item async for item in self.engine.generate(request) if isinstance(item, SampleOutput)]
            return sorted(outputs, key=lambda o: o.index)

        return self._run(collect())

    def update_weights(self, version: int, tensors) -> int:
        return self._run(self.engine.update_weights(version, tensors))

    def model_info(self):
        return self.engine.info

    def close(self) -> None:
        self._run(self.engine.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def checkpoint_due(config: GRPOConfig, step: int) -> bool:
    """Whether `step` ends with a checkpoint (besides the one a stop writes): every `checkpoint_every` steps and
    the last. Async rollouts drain before these, whether or not the run writes checkpoints, so that the run is
    the same either way."""
    return step == config.steps or bool(config.checkpoint_every and step % config.checkpoint_every == 0)


@dataclass
class _Prefetch:
    step: int
    future: Future
    cursor: dict[str, Any]
    behaviour: torch.nn.Module


class Rollouts:
    """Where each step's batch comes from: collected when asked (synchronous GRPO), or prefetched on a worker
    thread while the previous step trains (`async_rollouts`). A prefetched batch comes with its behaviour
    policy: a copy of the policy made when the prefetch started, which holds the weights the backend served
    then (the loop pushes new weights only after the prefetch has finished: `settle`). Two copies take turns,
    one for the batch training now and one for the batch being sampled."""

    def __init__(self, generation, verifier, tokenizer, spec: RewardSpec, stream: PromptStream, config: GRPOConfig,
                 model):
        self._collect = lambda step: collect(generation, verifier, tokenizer, spec, stream, config, step)
        self.stream, self.model = stream, model
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="r1-rollouts") if config.async_rollouts else None
        self._pending: _Prefetch | None = None
        self._in_use: torch.nn.Module | None = None
        self._spare: torch.nn.Module | None = None

    def __enter__(self) -> Rollouts:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def batch_for(self, step: int) -> tuple[Batch, torch.nn.Module | None]:
        """(batch, behaviour): the behaviour model is None when the batch was sampled by the policy as it is."""
        if self._pending is None:
            return self._collect(step), None
        pending, self._pending = self._pending, None
        if pending.step != step:
            raise RuntimeError(f"prefetched step {pending.step}, asked for step {step}")
        batch = pending.future.result()
        self._spare, self._in_use = self._in_use, pending.behaviour
        return batch, pending.behaviour

    def prefetch(self, step: int) -> None:
        """Starts sampling `step`'s batch with the weights served now (the policy's, before this step's update)."""
        behaviour = self._spare if self._spare is not None else copy.deepcopy(self.model).requires_grad_(False)
        self._spare = None
        behaviour.load_state_dict(self.model.state_dict())
        cursor = self.stream.state()
        self._pending = _Prefetch(step, self._pool.submit(self._collect, step), cursor, behaviour)

    def settle(self) -> float:
        """Waits for the prefetch (its errors surface here); returns the seconds waited."""
        tick = time.perf_counter()
        if self._pending is not None:
            self._pending.future.result()
        return time.perf_counter() - tick

    def discard(self) -> None:
        """Drops a prefetched batch and gives its prompts back to the data cursor (the run stops before it)."""
        if self._pending is not None:
            self.settle()
            self.stream.restore(self._pending.cursor)
            self._pending = None
