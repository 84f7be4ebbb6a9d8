"""Training stages as recipes: a YAML file (or the trainer service's job config) -> a GRPO or SFT run.

`GRPORecipe` / `SFTRecipe` are typed (r1/config.py: unknown keys and wrong types fail with the dotted key
named). `run_grpo` / `run_sft` take the backends already built (in-process or service clients: the library
never imports the wire; `r1 train` and the trainer service build them), load the base checkpoint, build
the data, run the stage with checkpoints under `<output>/checkpoints` (resuming from there if a previous
run left one), and write `<output>/metrics.jsonl` (one line per step), `<output>/curves.png` and
`<output>/summary.json`.

Choices:
- The base checkpoint is a directory or hub id; empty means the tiny teacher of `teacher_recipe`
  (pretrained once, then reused from the content-addressed cache).
- GRPO's training problems are drawn fresh (`data.seed`), and any that repeats a prompt of the teacher's
  pretraining set or of the held-out set is skipped: R1-Zero's RL prompts are not its base model's data.
  Held-out problems are the teacher recipe's held-out split, so pass@1 before and after is comparable with
  the teacher's own accuracy.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1.config import load_config
from r1.data.synthetic import Problem, difficulty_range, from_jsonl, unseen
from r1.errors import InvalidArgument
from r1.rewards.spec import RewardSpec
from r1.rl.grpo import EvalConfig, GRPOConfig, StepMetrics
from r1.rl.sft import SFTStageConfig

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ProblemData:
    """tasks and difficulty ([low, high] per task) of the synthetic training problems, n_train of them,
    drawn with `seed`; problems_file: a JSONL of problems (r1.data.synthetic.to_jsonl) used instead."""

    tasks: tuple[str, ...] = ("word", "linear")
    difficulty: dict[str, tuple[int, int]] = field(default_factory=lambda: {"word": (1, 1), "linear": (1, 2)})
    n_train: int = 4000
    seed: int = 1
    problems_file: str = ""


@dataclass(frozen=True)
class GRPORecipe:
    """base_checkpoint (empty: the teacher of teacher_recipe); data; grpo (the loop, see GRPOConfig); eval
    (held-out pass@1); reward: weights of the terms (R1-Zero: accuracy + format); reference: keep a frozen
    copy for the KL term (needed when grpo.beta > 0); engine_threads: torch threads of the in-process
    engine; threads: torch threads of the trainer."""

    base_checkpoint: str = ""
    teacher_recipe: str = "recipes/tiny-teacher.yaml"
    data: ProblemData = field(default_factory=ProblemData)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    reward: RewardSpec = field(default_factory=lambda: RewardSpec(accuracy=1.0, format=1.0))
    engine_threads: int = 1
    threads: int = 1

    def check(self, prefix: str = "") -> None:
        """Every section in range; errors name `prefix` + the dotted field ("config." in a job)."""
        self.grpo.check(f"{prefix}grpo")
        self.eval.check(f"{prefix}eval")
        if self.data.n_train < self.grpo.prompts_per_step and not self.data.problems_file:
            raise InvalidArgument(f"{prefix}data.n_train", f"must be >= grpo.prompts_per_step = "
                                                           f"{self.grpo.prompts_per_step}")


@dataclass(frozen=True)
class SFTRecipe:
    """base_checkpoint (empty: the teacher of teacher_recipe); records_file: JSONL of prompt/completion or
    messages records (empty: worked solutions of `data`'s synthetic problems); sft: the stage's settings."""

    base_checkpoint: str = ""
    teacher_recipe: str = "recipes/tiny-teacher.yaml"
    data: ProblemData = field(default_factory=ProblemData)
    records_file: str = ""
    sft: SFTStageConfig = field(default_factory=SFTStageConfig)
    threads: int = 1


def load_grpo_recipe(path: str | Path | None, overrides: list[str] = ()) -> GRPORecipe:
    recipe = load_config(GRPORecipe, path, overrides=overrides)
    recipe.check()
    return recipe


def load_sft_recipe(path: str | Path | None, overrides: list[str] = ()) -> SFTRecipe:
    return load_config(SFTRecipe, path, overrides=overrides)


def teacher_recipe_path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() or path.is_file() else ROOT / path


def base_checkpoint(base: str, teacher_recipe: str) -> str:
    """`base`, or the teacher of `teacher_recipe` (pretrained now if not cached)."""
    if base:
        return base
    from r1.model.pretrain import load_recipe, pretrain

    return str(pretrain(load_recipe(teacher_recipe_path(teacher_recipe)), progress=False))


def teacher_problems(teacher_recipe: str) -> tuple[list[Problem], list[Problem]]:
    """The (pretraining, held-out) problems of a teacher recipe."""
    from r1.model.pretrain import load_recipe, problems

    return problems(load_recipe(teacher_recipe_path(teacher_recipe)).data)


def heldout_problems(teacher_recipe: str) -> list[Problem]:
    return teacher_problems(teacher_recipe)[1]


def training_problems(data: ProblemData, excluded: Collection[Problem]) -> list[Problem]:
    """The RL prompts: a problems file, or fresh synthetic problems, each task's share of `n_train` with
    distinct prompts; none shares a prompt with `excluded` (the teacher's pretraining and held-out sets).

    Why the pretraining prompts are excluded too: the tasks' prompt spaces are small, and a fresh draw of
    one-step word problems repeats a prompt the teacher was pretrained on 40% of the time. Those it has
    learnt by heart (their groups mostly all right, no signal), while every held-out prompt is unseen: RL
    on seen prompts spends its rollouts away from the distribution it is measured on."""
    seen = {p.prompt for p in excluded}
    if data.problems_file:
        kept = [p for p in from_jsonl(data.problems_file) if p.prompt not in seen]
        if not kept:
            raise InvalidArgument("data.problems_file", f"{data.problems_file}: every problem shares a prompt with "
                                                        "the teacher's pretraining or held-out set")
        return kept
    kept = []
    for k, task in enumerate(data.tasks):
        share = data.n_train // len(data.tasks) + (k < data.n_train % len(data.tasks))
        levels = difficulty_range(task, tuple(data.difficulty[task]) if task in data.difficulty else None)
        kept += unseen(task, data.seed, levels, share, seen, field="data.n_train")
    return kept


def load_policy(directory: str):
    """The model of a checkpoint directory (our teacher or a transformers student) and its tokenizer."""
    from r1.model.checkpoint import load_pretrained, resolve
    from r1.model.tokenizer import load_tokenizer

    resolved = resolve(directory)
    if not (resolved / "config.json").is_file():
        raise InvalidArgument("base_checkpoint", f"{directory} has no config.json: pass a checkpoint directory "
                                                 "(Hugging Face layout) or a hub id")
    if json.loads((resolved / "config.json").read_text()).get("model_type") == "deepseek_v3":
        model = load_pretrained(resolved)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(resolved, dtype=torch.float32)
    return model.eval(), load_tokenizer(str(resolved))


def run_grpo(recipe: GRPORecipe, output: str | Path, generation, verifier, base: str,
             on_step: Callable[[StepMetrics], None] | None = None, should_stop: Callable[[], bool] = lambda: False,
             on_checkpoint=None, on_evaluation=None) -> dict[str, Any]:
    """Runs (or resumes) the GRPO stage; returns the history with a "summary" entry."""
    from r1.rl.grpo import train

    recipe.check()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    pretraining, heldout = teacher_problems(recipe.teacher_recipe)
    train_set = training_problems(recipe.data, pretraining + heldout)
    model, tokenizer = load_policy(base)
    reference = load_policy(base)[0].eval() if recipe.grpo.beta else None
    if reference is not None:
        reference.requires_grad_(False)
    metrics_file = output / "metrics.jsonl"
    keep_metrics_until(metrics_file, output / "checkpoints")

    def record(metrics: StepMetrics) -> None:
        with metrics_file.open("a") as f:
            f.write(json.dumps({"step": metrics.step, **metrics.values()}) + "\n")
        if on_step is not None:
            on_step(metrics)

    history = train(model, tokenizer, generation, verifier, train_set, heldout, recipe.grpo, recipe.eval,
                    spec=recipe.reward, ref_model=reference, on_step=record, checkpoints=output / "checkpoints",
                    should_stop=should_stop, on_checkpoint=on_checkpoint, on_evaluation=on_evaluation)
    summary = {
        "pass_at_1_before": history["pass_at_1_before"], "pass_at_1_after": history["pass_at_1_after"],
        "gain_points": 100 * (history["pass_at_1_after"] - history["pass_at_1_before"]),
        "evaluations": history["evaluations"], "steps": len(history["steps"]), "train_minutes":
            history["seconds"] / 60, "heldout_problems": min(recipe.eval.problems, len(heldout)), "k": recipe.eval.k,
        "base_checkpoint": base, "recipe": asdict(recipe),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=list) + "\n")
    plot_curves(history, output / "curves.png")
    history["summary"] = summary
    return history


def keep_metrics_until(metrics_file: Path, checkpoints: Path) -> None:
    """On resume, drop the metric lines of steps after the checkpoint: those steps are about to run again."""
    from r1.rl.checkpoint import latest_checkpoint, load_state

    latest = latest_checkpoint(checkpoints)
    if not metrics_file.is_file():
        return
    step = load_state(latest).step if latest is not None else 0
    lines = [line for line in metrics_file.read_text().splitlines() if json.loads(line)["step"] <= step]
    metrics_file.write_text("".join(line + "\n" for line in lines))


def plot_curves(history: dict[str, Any], path: Path) -> None:
    """Reward, training accuracy and response length per step, and held-out pass@1 at each evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = history["steps"]
    xs = [m.step for m in steps]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(xs, [m.reward_mean for m in steps], label="reward (accuracy + format)")
    axes[0].plot(xs, [m.accuracy for m in steps], label="training accuracy")
    axes[0].set_title("rollout reward")
    axes[1].plot(xs, [m.length_mean for m in steps], label="mean")
    axes[1].plot(xs, [m.length_max for m in steps], label="max", alpha=0.5)
    axes[1].set_title("response length (tokens)")
    evaluations = [(s, p) for s, p in history["evaluations"] if not math.isnan(p)]
    axes[2].plot([s for s, _ in evaluations], [100 * p for _, p in evaluations], marker="o")
    axes[2].set_title("held-out pass@1 (%)")
    for axis in axes:
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def sft_records(recipe: SFTRecipe) -> list[dict[str, Any]]:
    from r1.rl.sft import load_records, problem_records

    if recipe.records_file:
        return load_records(recipe.records_file)
    pretraining, heldout = teacher_problems(recipe.teacher_recipe)
    return problem_records(training_problems(recipe.data, pretraining + heldout))


def run_sft(recipe: SFTRecipe, output: str | Path, base: str, on_step=None, should_stop=None) -> dict[str, Any]:
    """Runs the SFT stage through TRL's SFTTrainer; the model goes to `<output>/model`."""
    from r1.rl.sft import train_sft

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    model, tokenizer = load_policy(base)
    history = train_sft(model, tokenizer, sft_records(recipe), recipe.sft, output / "model", on_step=on_step,
                        should_stop=should_stop)
    summary = {key: history[key] for key in ("final_loss", "steps", "seconds", "stopped") if key in history}
    (output / "summary.json").write_text(json.dumps({**summary, "base_checkpoint": base}, indent=2) + "\n")
    return {**history, "summary": summary}
