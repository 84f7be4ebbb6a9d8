"""What a trainer job is to the runner: a `JobSpec` (the submitted request, validated) and the `JobContext`
it reports through; `validate_job` and `run_job` turn a spec into a GRPO or SFT run of the library.

The runner (services/trainer/runner.py) owns states, persistence and threads; this file owns what the
stages mean. A job's output directory holds `checkpoints/` (r1.rl.checkpoint: a restarted job resumes from
the newest), `metrics.jsonl` (one line per step) and the curves PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1.errors import InvalidArgument

STAGES = ("grpo", "sft")


@dataclass(frozen=True)
class DatasetSpec:
    """One DatasetRef: uri ("synthetic" for the recipe's generated problems, a .jsonl path, or a hub id),
    split, name (hub configuration), weight."""

    uri: str
    split: str = "train"
    name: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class JobSpec:
    """A submitted job. config: the stage's recipe as a plain dict (r1.rl.recipe's GRPORecipe / SFTRecipe
    fields); generation_target / verifier_target: host:port, empty for in-process backends."""

    job_id: str
    stage: str
    config: dict[str, Any]
    datasets: tuple[DatasetSpec, ...]
    base_checkpoint: str
    output_dir: str
    generation_target: str = ""
    verifier_target: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class JobContext:
    """How a running job reports, all called from the job's thread: step(step, values) after each optimizer
    step; log(level, message) with level one of "debug", "info", "warning", "error"; checkpoint(step, path,
    weight_version, final) after each save; total_steps(n) once known; should_stop() polled between steps
    (True after CancelJob: the job then saves a final checkpoint and returns); evaluation(benchmark,
    weight_version, pass_at_1) after each held-out evaluation."""

    step: Callable[[int, dict[str, float]], None]
    log: Callable[[str, str], None]
    checkpoint: Callable[[int, str, int, bool], None]
    total_steps: Callable[[int], None]
    should_stop: Callable[[], bool]
    evaluation: Callable[[str, int, float], None] = lambda benchmark, version, value: None


def recipe_of(spec: JobSpec):
    """The stage's typed recipe from the job config (unknown keys and wrong types name the field under
    `config.`); datasets add a problems or records file."""
    from r1.config import from_dict
    from r1.rl.recipe import GRPORecipe, SFTRecipe

    if spec.stage not in STAGES:
        raise InvalidArgument("stage", f"unknown stage {spec.stage!r}; valid: {', '.join(STAGES)}")
    config = dict(spec.config)
    files = [d.uri for d in spec.datasets if d.uri != "synthetic"]
    if len(files) > 1:
        raise InvalidArgument("datasets", "one dataset file per job (or \"synthetic\"); mixing is not supported yet")
    for dataset in spec.datasets:
        if dataset.uri != "synthetic" and not Path(dataset.uri).is_file():
            raise InvalidArgument("datasets.uri", f"{dataset.uri}: no such file; give a local .jsonl file or "
                                                  "\"synthetic\" (the recipe's generated problems)")
    if spec.stage == "grpo":
        if files:
            config["data"] = {**config.get("data", {}), "problems_file": files[0]}
        recipe = _typed(from_dict, GRPORecipe, config)
        recipe.check("config.")
    else:
        if files:
            config["records_file"] = files[0]
        recipe = _typed(from_dict, SFTRecipe, config)
    return recipe


def _typed(from_dict, cls, config):
    try:
        return from_dict(cls, config, "config")
    except InvalidArgument:
        raise
    except (TypeError, ValueError) as e:
        raise InvalidArgument("config", str(e)) from e


def validate_job(spec: JobSpec) -> None:
    """Everything checkable before the job runs: the stage's config, datasets, the base checkpoint."""
    recipe_of(spec)
    if spec.base_checkpoint not in ("", "teacher") and not Path(spec.base_checkpoint).is_dir() \
            and spec.base_checkpoint.count("/") != 1:
        raise InvalidArgument("base_checkpoint", f"{spec.base_checkpoint}: not a directory nor a hub id "
                                                 "(owner/name); \"teacher\" uses the recipe's tiny teacher")


def run_job(spec: JobSpec, context: JobContext) -> None:
    """Runs the job to completion or until context.should_stop(); resumes from its last checkpoint."""
    from r1.rl.recipe import base_checkpoint, run_grpo, run_sft

    recipe = recipe_of(spec)
    base = base_checkpoint("" if spec.base_checkpoint == "teacher" else spec.base_checkpoint, recipe.teacher_recipe)
    output = Path(spec.output_dir)
    if spec.stage == "sft":
        context.total_steps(recipe.sft.max_steps)
        history = run_sft(recipe, output, base, on_step=context.step, should_stop=context.should_stop)
        context.checkpoint(history["summary"].get("steps", 0), str(output / "model"), 0, True)
        return
    context.total_steps(recipe.grpo.steps)
    generation, close_generation = generation_backend(spec.generation_target, base, recipe.engine_threads)
    verifier = verifier_backend(spec.verifier_target)
    try:
        history = run_grpo(recipe, output, generation, verifier, base,
                           on_step=lambda m: context.step(m.step, m.values()), should_stop=context.should_stop,
                           on_checkpoint=lambda path, step, version, final: context.checkpoint(step, str(path),
                                                                                                version, final),
                           on_evaluation=lambda step, version, value: context.evaluation("synthetic", version, value))
        summary = history["summary"]
        context.log("info", f"held-out pass@1 {summary['pass_at_1_before']:.1%} -> {summary['pass_at_1_after']:.1%} "
                            f"after {summary['steps']} steps ({summary['train_minutes']:.1f} min); curves: "
                            f"{output / 'curves.png'}")
    finally:
        verifier.close()
        close_generation()


def generation_backend(target: str, base: str, threads: int = 1):
    """(backend, close): the generation service's client at `target`, or an in-process torch engine."""
    if target:
        from services.generation.client import GenerationClient

        client = GenerationClient(target)
        return client, client.close
    from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
    from r1.rl.grpo import LocalGeneration

    local = LocalGeneration(TorchEngine(TorchEngineConfig(model=base, threads=threads)))
    return local, local.close


def verifier_backend(target: str):
    """The verifier service's client at `target`, or the library's verifier in-process."""
    if target:
        from services.verifier.client import VerifierClient

        return VerifierClient(target)
    from r1.rewards.verifier import Verifier, VerifierConfig

    return Verifier(VerifierConfig(workers=2, math_workers=1))
