"""A job function for the trainer service's tests: real enough to exercise states, events, cancellation and
restart (it checkpoints its step to a file and resumes from it), fast enough for the suite."""

from __future__ import annotations

import json
import time
from pathlib import Path

from services.trainer.jobs import JobContext, JobSpec


def counting_job(spec: JobSpec, context: JobContext) -> None:
    """Counts to config.grpo.steps, one step per `config.eval.every` hundredths of a second (reusing valid
    recipe fields), checkpointing every step; fails on purpose if a label asks it to."""
    steps = spec.config.get("grpo", {}).get("steps", 5)
    pause = spec.config.get("eval", {}).get("every", 1) / 100
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    state = output / "state.json"
    start = json.loads(state.read_text())["step"] if state.is_file() else 0
    if start:
        context.log("info", f"resumed from step {start}")
    context.total_steps(steps)
    for step in range(start + 1, steps + 1):
        if spec.labels.get("fail_at") == str(step):
            raise RuntimeError(f"failing at step {step} as asked")
        time.sleep(pause)
        state.write_text(json.dumps({"step": step}))
        context.step(step, {"reward_mean": step / steps, "accuracy": step / steps / 2, "version": step})
        final = context.should_stop() or step == steps
        context.checkpoint(step, str(state), step, final)
        if context.should_stop():
            return
