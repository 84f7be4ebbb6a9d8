"""Exact resume: `kill -9` a GRPO run after a checkpoint, start the same command again, and the final weights
equal those of a run that was never interrupted (fixed seeds; one prompt in flight at a time, so the engine's
batches, and with them every sampled token, are the same in both runs). With async rollouts too: the pipeline
drains before each checkpoint, so the step after one is sampled the same way in both runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from r1.rl.checkpoint import latest_checkpoint, load_state

ROOT = Path(__file__).resolve().parents[2]
STEPS = 12  # margin: a tiny step takes tens of ms, and under load the poll below can wake several steps late


def command(base: Path, output: Path, schedule: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "r1.cli", "train", "grpo", "--recipe", str(ROOT / "recipes" / "r1-zero-tiny.yaml"),
            "--output", str(output), f"base_checkpoint={base}", f"grpo.steps={STEPS}", "grpo.prompts_per_step=2",
            "grpo.group_size=4", "grpo.max_tokens=12", "grpo.rollout_concurrency=1", *schedule,
            "grpo.keep_checkpoints=10", "grpo.lr=1e-2", "grpo.temperature=1.5", "eval.problems=0",
            "reward={accuracy: 1.0, format: 1.0, language: 1.0, target_language: en}", "data.n_train=40"]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def final_weights(output: Path) -> dict[str, torch.Tensor]:
    return load_file(str(latest_checkpoint(output / "checkpoints") / "model.safetensors"))


SCHEDULES = {"sync": ("grpo.checkpoint_every=1", "grpo.async_rollouts=false"),
             # checkpoints after even steps: odd steps sample the next step's batch while they train
             "async": ("grpo.checkpoint_every=2", "grpo.async_rollouts=true")}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_a_run_killed_mid_way_resumes_to_the_same_final_weights(bilingual_teacher_dir, tmp_path, schedule):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    subprocess.run(command(bilingual_teacher_dir, straight, schedule), check=True, env=environment(),
                   capture_output=True)

    process = subprocess.Popen(command(bilingual_teacher_dir, interrupted, schedule), env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (interrupted / "checkpoints" / "step-000002").is_dir():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its second checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_state(latest_checkpoint(interrupted / "checkpoints")).step
    assert 2 <= killed_at < STEPS, "the kill must land before the run's end"

    subprocess.run(command(bilingual_teacher_dir, interrupted, schedule), check=True, env=environment(),
                   capture_output=True)
    assert load_state(latest_checkpoint(interrupted / "checkpoints")).step == STEPS
    expected, got = final_weights(straight), final_weights(interrupted)
    base = load_file(str(bilingual_teacher_dir / "model.safetensors"))
    assert any(not torch.equal(expected[name], base[name]) for name in expected), "the runs must have learnt"
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    steps = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # the steps redone after the kill are logged once
