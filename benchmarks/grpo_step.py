"""GRPO step time: our GRPO workflow against TRL's GRPOTrainer, same model, prompts, group, lengths and reward.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/grpo_step.py [--prompts 8] [--group 8] [--tokens 64]
        [--steps 5] [--hidden 128] [--layers 4] [--threads 1] [--loss-prompts 4]

The model is a tiny random Qwen2 (`--hidden`, `--layers`) with a locally trained tokenizer, written to a
temporary directory; both sides load their own copy from it. Prompts are R1-Zero prompts (`r1_zero_prompt`)
of synthetic training problems, passed to TRL as plain strings (no chat template); the reward is ours on both
sides: the verifier's strict math check plus the format term (`RewardSpec(accuracy=1, format=1,
think_prefilled=True)`: the prompt already opens `<think>`), wrapped for TRL as a reward function that gets
each completion's problem through a dataset column.

(a) Seconds per step, same work: `--prompts` prompts x G = `--group` completions of at most `--tokens` tokens,
    T = 1, top-p 1, one policy update per batch (mu = num_iterations = 1), the DAPO loss (eps 0.2 / 0.28, token
    mean) with beta = 0, AdamW (lr 1e-5, betas 0.9 / 0.99, no weight decay, constant lr), gradient clipping at
    1, fp32, no gradient checkpointing (TRL's defaults of bf16 and checkpointing turned off to match). Ours:
    `r1.rl.grpo.train` with the torch engine in-process (`LocalGeneration`), dynamic sampling off, new weights
    pushed to the engine every step; TRL: `GRPOTrainer` generating with transformers `generate()` on the policy
    itself (its CPU path; no weight sync needed). Step time: ours the sum of `StepMetrics.seconds`
    (generation, verify, train, sync), TRL from `on_step_begin` to `on_step_end`; the first step of each side
    is a warm-up and not counted. Both sides stop at eos or the length limit, so tokens generated per step
    are printed beside the times. Ratio: TRL's seconds per step over ours.
(b) Loss agreement on one fixed batch (`--loss-prompts` prompts x G): per prompt, completions that are right
    and well formatted, wrong and well formatted, unformatted, and random tokens, so every group has distinct
    rewards. TRL builds its inputs with its own `_generate_and_score_completions` (a `rollout_func` hands it
    the fixed completions; it decodes them, calls the reward function, computes advantages, pi_old and
    reference log-probs), then the same perturbation is added to both policies' weights (standing in for
    one optimizer step, so the ratio pi / pi_old is not 1 and the clip is exercised), and
    `GRPOTrainer.compute_loss` is compared with ours (`completion_logprobs` + `grpo.policy_loss`) given TRL's
    advantages; the gradients, the advantages and the pi_old log-probs are compared separately. Variants:
    grpo with beta = 0.04 (k3 KL to the reference; TRL `use_bias_correction_kl=False`, since its default
    weights the KL term by pi / pi_old, which ours does not: that row is printed too, for the size of the
    difference), dapo, dr_grpo (TRL `scale_rewards="none"`, ours centred advantages). TRL's `epsilon_high`
    is set to ours: 0.28 for dapo, 0.2 (symmetric) for grpo and dr_grpo, whose clip ours keeps symmetric.

Not compared: temperature != 1. TRL divides the logits by the sampling temperature when it scores
completions; `r1.rl.logprobs.completion_logprobs` scores with the raw logits, so at T != 1 the two
optimise different objectives.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1.data.synthetic import Problem, split
from r1.model.pretrain import reference_answer
from r1.model.tokenizer import default_corpus, load_tokenizer, r1_zero_prompt, save_tokenizer, train_tokenizer
from r1.rewards.items import Item, MathCheck
from r1.rewards.math import Profile
from r1.rewards.spec import RewardSpec
from r1.rewards.verifier import Verifier, VerifierConfig
from r1.rl import advantages as adv
from r1.rl import grpo, losses
from r1.rl.logprobs import completion_logprobs

TASKS = ["arithmetic", "linear", "fractions", "word", "countdown"]
SPEC = RewardSpec(accuracy=1.0, format=1.0, think_prefilled=True)
LR, EPSILON_LOW, EPSILON_HIGH, GRAD_CLIP, BETA2 = 1e-5, 0.2, 0.28, 1.0, 0.99
VARIANTS = {"grpo": 0.04, "dapo": 0.0, "dr_grpo": 0.0}  # loss -> beta


@dataclass(frozen=True)
class Setup:
    """One benchmark size: prompts x group completions of at most tokens, for steps (the first is warm-up)."""

    prompts: int = 8
    group: int = 8
    tokens: int = 64
    steps: int = 5
    threads: int = 1
    seed: int = 0


def tiny_qwen2(directory: str | Path, hidden: int = 128, layers: int = 4, seed: int = 0) -> Path:
    """A random Qwen2ForCausalLM with a local 400-token tokenizer, saved as a transformers checkpoint."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_tokenizer(default_corpus(), vocab_size=400)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=3 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    directory = Path(directory)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    save_tokenizer(tokenizer, directory)
    return directory


def load_policy(directory: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)


def training_problems(count: int, seed: int = 0) -> list[Problem]:
    return split(TASKS, count, 0, seed=seed)[0]


@dataclass
class Text:
    """What `grpo.rewards_of` reads from a sample."""

    text: str


def trl_reward(verifier, problems: list[Problem], lengths: list[int] | None = None):
    """Our reward as a TRL reward function: the dataset's `problem` column indexes `problems`. Records the
    tokens it was given per call (one call per generation batch) in `lengths`."""

    def r1_reward(completions: list[str], problem: list[int], completion_ids=None, **_) -> list[float]:
        if lengths is not None and completion_ids is not None:
            lengths.append(sum(len(ids) for ids in completion_ids))
        rows = [problems[i] for i in problem]
        return grpo.rewards_of(verifier, SPEC, rows, [[Text(c)] for c in completions]).total.tolist()

    return r1_reward


def started(verifier):
    """The verifier with its symbolic-fallback pool up: the pool starts on the first answer the fast path cannot
    settle (seconds, once), which would otherwise land in whichever timed step first needs it."""
    verifier.check(Item("<answer>y</answer>", MathCheck("-5", Profile.STRICT)))
    return verifier


def trl_config(output_dir: str, setup: Setup, **overrides):
    """TRL's GRPOConfig for the same step as ours: one generation batch of prompts x G per optimizer step."""
    from trl import GRPOConfig

    values = dict(
        output_dir=output_dir, use_cpu=True, report_to="none", logging_steps=1, save_strategy="no",
        disable_tqdm=True, max_steps=setup.steps, per_device_train_batch_size=setup.prompts * setup.group,
        gradient_accumulation_steps=1, num_generations=setup.group, max_completion_length=setup.tokens,
        temperature=1.0, top_p=1.0, learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
        weight_decay=0.0, adam_beta2=BETA2, max_grad_norm=GRAD_CLIP, beta=0.0, loss_type="dapo",
        epsilon=EPSILON_LOW, epsilon_high=EPSILON_HIGH, scale_rewards="group", num_iterations=1, bf16=False,
        activation_checkpointing=False, seed=setup.seed, dataloader_num_workers=0)
    values.update(overrides)
    return GRPOConfig(**values)


def prompt_dataset(problems: list[Problem]):
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [r1_zero_prompt(p.prompt) for p in problems],
                              "problem": list(range(len(problems)))})


@dataclass
class Side:
    """Per counted step (warm-up excluded): seconds in total and by phase, tokens generated."""

    seconds: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    tokens: list[int] = field(default_factory=list)

    def mean(self, values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")


def run_ours(directory: Path, problems: list[Problem], setup: Setup) -> Side:
    from r1.engine.torch_engine import TorchEngine, TorchEngineConfig

    model = load_policy(directory)
    tokenizer = load_tokenizer(directory)
    config = grpo.GRPOConfig(steps=setup.steps, prompts_per_step=setup.prompts, group_size=setup.group, mu=1, lr=LR,
                             grad_clip=GRAD_CLIP, loss="dapo", epsilon_low=EPSILON_LOW, epsilon_high=EPSILON_HIGH,
                             beta=0.0, temperature=1.0, top_p=1.0, max_tokens=setup.tokens, dynamic_sampling=False,
                             rollout_concurrency=setup.prompts, seed=setup.seed, max_minutes=60.0)
    side = Side()

    def on_step(metrics: grpo.StepMetrics) -> None:
        if metrics.step == 1:
            return
        side.seconds.append(sum(metrics.seconds.values()))
        for name, seconds in metrics.seconds.items():
            side.phases.setdefault(name, []).append(seconds)
        side.tokens.append(round(metrics.length_mean * metrics.groups_used * setup.group))

    generation = grpo.LocalGeneration(TorchEngine(TorchEngineConfig(model=str(directory), threads=setup.threads)))
    try:
        with Verifier(VerifierConfig(workers=1, math_workers=1)) as verifier:
            grpo.train(model, tokenizer, generation, started(verifier), problems, [], config,
                       grpo.EvalConfig(problems=0), spec=SPEC, on_step=on_step)
    finally:
        generation.close()
    return side


def run_trl(directory: Path, problems: list[Problem], setup: Setup) -> Side:
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOTrainer

    side, lengths, reward_seconds, generate_seconds = Side(), [], [], []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started, self.marks = time.perf_counter(), (len(generate_seconds), len(reward_seconds))

        def on_step_end(self, args, state, control, **kwargs):
            seconds = time.perf_counter() - self.started
            if state.global_step == 1:
                return
            generation = sum(generate_seconds[self.marks[0]:])
            verify = sum(reward_seconds[self.marks[1]:])
            side.seconds.append(seconds)
            for name, value in (("generation", generation), ("verify", verify),
                                ("train", seconds - generation - verify)):
                side.phases.setdefault(name, []).append(value)
            side.tokens.append(lengths[-1])

    def timed(function, into: list[float]):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                into.append(time.perf_counter() - started)

        return wrapper

    model = load_policy(directory)
    model.generate = timed(model.generate, generate_seconds)  # TRL's CPU path calls the policy's generate()
    with Verifier(VerifierConfig(workers=1, math_workers=1)) as verifier, tempfile.TemporaryDirectory() as out:
        reward = timed(trl_reward(started(verifier), problems, lengths), reward_seconds)
        trainer = GRPOTrainer(model=model, reward_funcs=reward,
                              args=trl_config(out, setup), train_dataset=prompt_dataset(problems),
                              processing_class=load_tokenizer(directory), callbacks=[StepTimer()])
        trainer.remove_callback(PrinterCallback)  # its per-step log lines; the logging itself still runs
        trainer.train()
    return side


# ------------------------------------------------------------------------------------------ loss agreement


def fixed_batch(tokenizer, problems: list[Problem], group: int, tokens: int, seed: int = 0):
    """Row-wise prompt ids and completion ids [P * G]: per prompt, rotating through a right answer in the
    template, a wrong one in the template, an unformatted one, and random tokens (no eos, truncated)."""
    rng = random.Random(seed)
    eos, first_plain = tokenizer.eos_token_id, 7  # ids 0-6: bos, eos, pad and the four tags
    prompts, completions = [], []
    for problem in problems:
        answer = reference_answer(problem)
        ids = tokenizer(r1_zero_prompt(problem.prompt))["input_ids"]
        texts = [f" so the result is clear.</think> <answer>{answer}</answer>",
                 " I think it is this.</think> <answer>987654321</answer>",
                 f" the answer is {answer}", None]
        for j in range(group):
            text = texts[(j + len(prompts) // group) % len(texts)]
            if text is None:
                length = rng.randint(tokens // 2, tokens)
                completion = [rng.randrange(first_plain, len(tokenizer)) for _ in range(length)]
            else:
                completion = (tokenizer(text, add_special_tokens=False)["input_ids"] + [eos])[:tokens]
            prompts.append(ids)
            completions.append(completion)
    return prompts, completions


def perturb(model, scale: float, seed: int) -> None:
    """Adds the same seeded noise to every parameter (a stand-in for an optimizer step)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)


def gradients(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for _, p in sorted(model.named_parameters())])


def masked_max(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(((a - b).abs() * mask).max())


def loss_agreement(directory: Path, problems: list[Problem], group: int, tokens: int, loss: str,
                   scale: float = 0.02, weighted_kl: bool = False) -> dict[str, float]:
    """TRL's loss and ours on the fixed batch (see the module docstring): both values, their differences, and
    the advantage, pi_old log-prob and gradient differences. weighted_kl: TRL's default
    `use_bias_correction_kl=True` (its KL term times pi / pi_old, DeepSeek-V3.2) instead of DeepSeekMath's plain
    k3, which is what ours computes."""
    from trl import GRPOTrainer

    beta = VARIANTS[loss]
    # clip-higher is DAPO's alone in ours (grpo and dr_grpo clip symmetrically); TRL takes it for any loss
    epsilon_high = EPSILON_HIGH if loss == "dapo" else EPSILON_LOW
    tokenizer = load_tokenizer(directory)
    prompts, completions = fixed_batch(tokenizer, problems, group, tokens)
    setup = Setup(prompts=len(problems), group=group, tokens=tokens, steps=1)

    def rollout(rendered, trainer):
        assert len(rendered) == len(prompts)
        return {"prompt_ids": prompts, "completion_ids": completions, "logprobs": None}

    theirs, ours = load_policy(directory), load_policy(directory)
    reference = load_policy(directory).eval() if beta else None
    with Verifier(VerifierConfig(workers=1, math_workers=1)) as verifier, tempfile.TemporaryDirectory() as out:
        # num_iterations=2: TRL then scores pi_old itself, as for every batch it reuses
        args = trl_config(out, setup, loss_type=loss, beta=beta, num_iterations=2, epsilon_high=epsilon_high,
                          use_bias_correction_kl=weighted_kl, scale_rewards="none" if loss == "dr_grpo" else "group")
        trainer = GRPOTrainer(model=theirs, reward_funcs=trl_reward(verifier, problems), args=args,
                              train_dataset=prompt_dataset(problems), processing_class=tokenizer, rollout_func=rollout)
        theirs.train()
        trainer.current_gradient_accumulation_steps = 1  # what the training loop sets for one batch per step
        rows = [trainer.train_dataset[i] for i in range(len(problems)) for _ in range(group)]
        inputs = trainer._generate_and_score_completions(rows)
        rewards = grpo.rewards_of(verifier, SPEC, [p for p in problems for _ in range(group)],
                                  [[Text(tokenizer.decode(c, skip_special_tokens=True))] for c in completions]).total
    config = grpo.GRPOConfig(loss=loss, beta=beta, epsilon_low=EPSILON_LOW, epsilon_high=epsilon_high,
                             max_tokens=tokens)
    advantages = (adv.centred_advantages(rewards, group) if loss == "dr_grpo"
                  else adv.grpo_advantages(rewards, group))
    pad = tokenizer.pad_token_id
    ours.train()
    with torch.no_grad():
        old, mask = completion_logprobs(ours, prompts, completions, pad)
        ref = completion_logprobs(reference, prompts, completions, pad)[0] if beta else None
    perturb(theirs, scale, seed=1)
    perturb(ours, scale, seed=1)

    their_loss = trainer.compute_loss(theirs, inputs)
    their_loss.backward()
    logprobs, _ = completion_logprobs(ours, prompts, completions, pad)
    our_loss = grpo.policy_loss(config, logprobs, old, ref, inputs["advantages"], mask)
    our_loss.backward()
    ratio = torch.exp(logprobs.detach() - old)
    clipped = losses.clip_fraction(logprobs.detach(), old, inputs["advantages"], mask, config.epsilon_low,
                                        config.epsilon_high)
    return {
        "loss_ours": our_loss.item(), "loss_trl": their_loss.item(), "loss_diff": abs((our_loss - their_loss).item()),
        "grad_diff": float((gradients(ours) - gradients(theirs)).abs().max()),
        "grad_norm": float(gradients(ours).norm()),
        "advantage_diff": float((advantages - inputs["advantages"]).abs().max()),
        "old_logprob_diff": masked_max(old, inputs["old_per_token_logps"], mask),
        "ref_logprob_diff": masked_max(ref, inputs["ref_per_token_logps"], mask) if beta else float("nan"),
        "reward_std": float(rewards.std()), "clip_fraction": clipped,
        "ratio_spread": float(((ratio - 1).abs() * mask).max()),
    }


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=8, help="G, completions per prompt")
    parser.add_argument("--tokens", type=int, default=64, help="max completion tokens")
    parser.add_argument("--steps", type=int, default=5, help="steps per side, the first one a warm-up")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both sides")
    parser.add_argument("--loss-prompts", type=int, default=4, help="prompts in the loss-agreement batch")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the first step is a warm-up)")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import transformers
    import trl

    transformers.utils.logging.disable_progress_bar()

    setup = Setup(prompts=args.prompts, group=args.group, tokens=args.tokens, steps=args.steps, threads=args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        directory = tiny_qwen2(Path(scratch) / "qwen2", hidden=args.hidden, layers=args.layers)
        parameters = sum(p.numel() for p in load_policy(directory).parameters())
        problems = training_problems(max(64, 4 * args.prompts))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__} "
              f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, trl {trl.__version__}; "
              f"Qwen2 hidden {args.hidden} x {args.layers} layers, {parameters / 1e6:.2f}M parameters")
        ours = run_ours(directory, problems, setup)
        theirs = run_trl(directory, problems, setup)
        batch = problems[:args.loss_prompts]
        agreement = {(f"{loss} (beta={VARIANTS[loss]})" if VARIANTS[loss] else loss):
                     loss_agreement(directory, batch, args.group, args.tokens, loss) for loss in VARIANTS}
        agreement["grpo, TRL default KL*"] = loss_agreement(directory, batch, args.group, args.tokens, "grpo",
                                                            weighted_kl=True)

    print(f"\n(a) {args.prompts} prompts x G={args.group}, <= {args.tokens} tokens, T=1, dapo, beta=0, "
          f"{args.steps - 1} timed steps after 1 warm-up (mean per step)")
    print(f"{'':<22}{'s/step':>8}{'generation':>12}{'verify':>8}{'train':>8}{'sync':>8}{'tokens/step':>13}")
    for name, side in (("ours (r1.rl.grpo)", ours), ("TRL GRPOTrainer", theirs)):
        phases = "".join(f"{side.mean(side.phases[p]) if p in side.phases else float('nan'):>{w}.2f}"
                         for p, w in (("generation", 12), ("verify", 8), ("train", 8), ("sync", 8)))
        print(f"{name:<22}{side.mean(side.seconds):>8.2f}{phases}{side.mean(side.tokens):>13.0f}")
    print("(TRL 'train' is the rest of its step: scoring, loss, backward, optimizer, logging; it has no sync)")
    ratio = theirs.mean(theirs.seconds) / ours.mean(ours.seconds)
    per_token = ratio * ours.mean(ours.tokens) / theirs.mean(theirs.tokens)
    print(f"ratio TRL / ours: {ratio:.2f}x (target >= 1.5x); per generated token: {per_token:.2f}x")

    print(f"\n(b) loss agreement, fixed batch of {args.loss_prompts} prompts x G={args.group}, weights perturbed "
          f"after pi_old (TRL's advantages given to both)")
    print(f"{'variant':<24}{'loss ours':>12}{'loss TRL':>12}{'|diff|':>10}{'grad |diff|':>13}{'|grad|':>8}"
          f"{'adv |diff|':>12}{'pi_old |diff|':>15}{'clipped':>9}")
    for name, row in agreement.items():
        print(f"{name:<24}{row['loss_ours']:>12.7f}{row['loss_trl']:>12.7f}{row['loss_diff']:>10.1e}"
              f"{row['grad_diff']:>13.1e}{row['grad_norm']:>8.3f}{row['advantage_diff']:>12.1e}"
              f"{row['old_logprob_diff']:>15.1e}{row['clip_fraction']:>9.1%}")
    print("max |diff| over elements; grad: the flattened gradient of every parameter; clipped: share of tokens "
          "whose gradient the clip removes.\n* TRL's default use_bias_correction_kl=True weights the KL by pi / "
          "pi_old (DeepSeek-V3.2); ours is DeepSeekMath's plain k3, as TRL with use_bias_correction_kl=False (the "
          "rows above). Not expected to agree.")


if __name__ == "__main__":
    main()
