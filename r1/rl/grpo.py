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
7. the new weights go to the generation backend as version + 1 (`update_weights`), so the next rollouts
   are on-policy; every sample reports the version that produced it.
Held-out pass@1 (k samples per problem at the evaluation temperature) is measured before the first step,
every `eval.every` steps and after the last.

The backends are duck-typed so the same loop runs in-process and through the services: `generation` has
`generate(prompt_ids, n=, sampling=) -> [SampleOutput]` and `update_weights(version, tensors)` (the
generation service's client, or `LocalGeneration` over a TorchEngine); `verifier` has
`verify_batch(items) -> Verified...` (the library's `Verifier`, or the verifier service's client).
Not here yet: the trainer service (jobs, SQLite, WatchJob), checkpoints and exact resume, SFT.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from r1.data.synthetic import Problem
from r1.engine.types import GenerationRequest, SampleOutput, SamplingParams
from r1.model.checkpoint import to_checkpoint_names
from r1.model.moe import update_routing_bias
from r1.model.pretrain import reference_answer
from r1.model.tokenizer import r1_zero_prompt
from r1.rewards.items import Item, MathCheck
from r1.rewards.math import Profile
from r1.rewards.spec import RewardSpec, score
from r1.rl import advantages as adv
from r1.rl import losses
from r1.rl.logprobs import completion_logprobs

log = logging.getLogger(__name__)

REFLECTION_WORDS = ("wait", "re-check", "recheck", "verify", "double-check", "let me check", "mistake")


@dataclass(frozen=True)
class GRPOConfig:
    """steps, prompts_per_step, group_size (G), mu (inner updates per batch), lr, weight_decay, grad_clip;
    loss: grpo | dapo | dr_grpo; epsilon_low / epsilon_high (equal for grpo and dr_grpo), beta (KL to the
    frozen reference, k3); temperature, top_p, max_tokens of the rollouts; bias_update_speed; seed;
    max_minutes: wall-clock budget for the steps."""

    steps: int = 40
    prompts_per_step: int = 16
    group_size: int = 8
    mu: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    loss: str = "dapo"
    epsilon_low: float = 0.2
    epsilon_high: float = 0.28
    beta: float = 0.0
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 96
    bias_update_speed: float = 1e-3
    seed: int = 0
    max_minutes: float = 10.0


@dataclass(frozen=True)
class EvalConfig:
    """Held-out pass@1: k samples per problem at temperature / top_p (the R1 protocol: 0.6 / 0.95)."""

    problems: int = 100
    k: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 96
    every: int = 0  # steps between evaluations (0: before and after only)


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
    seconds: dict[str, float] = field(default_factory=dict)
    version: int = 0


def rollout(generation, tokenizer, problems: list[Problem], n: int, sampling: SamplingParams,
            threads: int = 16) -> tuple[list[list[int]], list[list[SampleOutput]]]:
    """Prompt ids per problem and n samples each, requests in flight together (the engine batches them)."""
    prompts = [tokenizer(r1_zero_prompt(p.prompt))["input_ids"] for p in problems]
    with ThreadPoolExecutor(min(threads, len(prompts))) as pool:
        outputs = list(pool.map(lambda ids: generation.generate(ids, n=n, sampling=sampling), prompts))
    return prompts, outputs


def rewards_of(verifier, spec: RewardSpec, problems: list[Problem], outputs: list[list[SampleOutput]]):
    """(total rewards [P * G], accuracy rewards [P * G], format rewards [P * G]) in rollout order."""
    texts = [(p, s.text) for p, samples in zip(problems, outputs) for s in samples]
    items = [Item(text, MathCheck(reference_answer(p), Profile.STRICT), id=str(i)) for i, (p, text) in enumerate(texts)]
    results = {int(v.id): v.result for v in verifier.verify_batch(items)}
    scored = [score(spec, text, results[i]) for i, (_, text) in enumerate(texts)]
    return (torch.tensor([s.total for s in scored]), torch.tensor([s.terms["accuracy"] for s in scored]),
            torch.tensor([s.terms.get("format", 0.0) for s in scored]))


def pass_at_1(generation, verifier, tokenizer, problems: list[Problem], config: EvalConfig, seed: int) -> float:
    sampling = SamplingParams(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens,
                              seed=seed)
    _, outputs = rollout(generation, tokenizer, problems, config.k, sampling)
    _, accuracy, _ = rewards_of(verifier, RewardSpec(), problems, outputs)
    return float(accuracy.mean())


def policy_loss(config: GRPOConfig, logprobs, old, ref, advantages, mask) -> torch.Tensor:
    if config.loss == "grpo":
        return losses.grpo_loss(logprobs, old, ref, advantages, mask, config.epsilon_low, config.beta)
    if config.loss == "dapo":
        return losses.dapo_loss(logprobs, old, advantages, mask, config.epsilon_low, config.epsilon_high, ref,
                                config.beta)
    return losses.dr_grpo_loss(logprobs, old, advantages, mask, config.max_tokens, config.epsilon_low, ref,
                               config.beta)


LOSSES = ("grpo", "dapo", "dr_grpo")


def train(model, tokenizer, generation, verifier, train_set: list[Problem], heldout: list[Problem],
          config: GRPOConfig, evaluation: EvalConfig, spec: RewardSpec = RewardSpec(accuracy=1.0, format=1.0),
          ref_model=None, on_step: Callable[[StepMetrics], None] | None = None) -> dict[str, Any]:
    """Runs GRPO on `model` (trained in place); returns pass@1 before/after, per-step metrics, evaluations."""
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; valid: {', '.join(LOSSES)}")
    if config.beta and ref_model is None:
        raise ValueError("beta > 0 needs the frozen reference model")
    rng = random.Random(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.99))
    pad = tokenizer.pad_token_id
    history: dict[str, Any] = {"steps": [], "evaluations": []}
    history["pass_at_1_before"] = pass_at_1(generation, verifier, tokenizer, heldout, evaluation, seed=10_000)
    history["evaluations"].append((0, history["pass_at_1_before"]))
    version, started = 0, time.perf_counter()
    for step in range(1, config.steps + 1):
        timings: dict[str, float] = {}
        tick = time.perf_counter()
        problems = rng.sample(train_set, config.prompts_per_step)
        sampling = SamplingParams(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens,
                                  seed=step * 100_003)
        prompts, outputs = rollout(generation, tokenizer, problems, config.group_size, sampling)
        timings["generation"], tick = time.perf_counter() - tick, time.perf_counter()
        total, accuracy, formatted = rewards_of(verifier, spec, problems, outputs)
        timings["verify"], tick = time.perf_counter() - tick, time.perf_counter()
        group_advantages = (adv.centred_advantages(total, config.group_size) if config.loss == "dr_grpo"
                            else adv.grpo_advantages(total, config.group_size))
        row_prompts = [p for p in prompts for _ in range(config.group_size)]
        completions = [list(s.token_ids) or [tokenizer.eos_token_id] for samples in outputs for s in samples]
        model.train()
        with torch.no_grad():  # pi_old: with one inner update it is the policy itself, detached
            old = completion_logprobs(model, row_prompts, completions, pad)[0] if config.mu > 1 else None
            ref = completion_logprobs(ref_model, row_prompts, completions, pad)[0] if ref_model is not None else None
        for _ in range(config.mu):
            logprobs, mask, logits = completion_logprobs(model, row_prompts, completions, pad, with_logits=True)
            old = logprobs.detach() if old is None else old
            loss = policy_loss(config, logprobs, old, ref, group_advantages, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        update_routing_bias(model, config.bias_update_speed)
        model.eval()
        timings["train"], tick = time.perf_counter() - tick, time.perf_counter()
        version += 1
        generation.update_weights(version, to_checkpoint_names(model.state_dict(), model.config))
        timings["sync"] = time.perf_counter() - tick
        metrics = step_metrics(step, total, accuracy, formatted, outputs, logprobs.detach(), old, ref,
                               group_advantages, mask, logits.detach(), config, timings, version)
        history["steps"].append(metrics)
        if on_step is not None:
            on_step(metrics)
        if evaluation.every and step % evaluation.every == 0:
            history["evaluations"].append((step, pass_at_1(generation, verifier, tokenizer, heldout, evaluation,
                                                           seed=10_000)))
        if time.perf_counter() - started > config.max_minutes * 60:
            log.warning("stopping after step %d: the %.1f-minute budget is spent", step, config.max_minutes)
            break
    history["pass_at_1_after"] = pass_at_1(generation, verifier, tokenizer, heldout, evaluation, seed=10_000)
    history["evaluations"].append((len(history["steps"]), history["pass_at_1_after"]))
    history["seconds"] = time.perf_counter() - started
    return history


def step_metrics(step, total, accuracy, formatted, outputs, logprobs, old, ref, advantages, mask, logits, config,
                 timings, version) -> StepMetrics:
    lengths = [len(s.token_ids) for samples in outputs for s in samples]
    texts = [s.text.lower() for samples in outputs for s in samples]
    kl = float(losses.token_mean(losses.kl_k3(logprobs, ref), mask)) if ref is not None else 0.0
    return StepMetrics(
        step=step, reward_mean=float(total.mean()), reward_std=float(total.std()), accuracy=float(accuracy.mean()),
        format_rate=float(formatted.mean()), length_mean=sum(lengths) / len(lengths), length_max=max(lengths),
        zero_variance_groups=float(adv.zero_variance_groups(total, config.group_size).float().mean()), kl=kl,
        clip_fraction=losses.clip_fraction(logprobs, old, advantages, mask, config.epsilon_low, config.epsilon_high),
        entropy=losses.token_entropy(logits, mask),
        reflection_rate=sum(any(w in t for w in REFLECTION_WORDS) for t in texts) / len(texts),
        seconds=timings, version=version)


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

    def close(self) -> None:
        self._run(self.engine.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
