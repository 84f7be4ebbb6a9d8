"""A job function for the trainer service's tests: real enough to exercise states, events, cancellation and
restart (it checkpoints its step to a file and resumes from it), fast enough for the suite. Importable by
name, so a trainer process started by a test runs it (`trainer.job_function`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from services.trainer.jobs import JobContext, JobSpec


def counting_job(spec: JobSpec, context: JobContext) -> None:
    """Counts to config.grpo.steps, one step per `config.eval.every` hundredths of a second (valid recipe
    fields, so the real validate_job accepts the config), checkpointing every step to state.json. On a
    restart it resumes after its checkpoint, logs "resumed from step N" and appends N to the `resumed`
    marker file. Labels steer it: fail_at=K raises at step K; ignore_stop=1 never stops early; raise_on_stop=1
    raises instead of stopping."""
    steps = spec.config.get("grpo", {}).get("steps", 5)
    pause = spec.config.get("eval", {}).get("every", 1) / 100
    output = Path(spec.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    state = output / "state.json"
    start = json.loads(state.read_text())["step"] if state.is_file() else 0
    if start:
        context.log("info", f"resumed from step {start}")
        with open(output / "resumed", "a") as marker:
            marker.write(f"{start}\n")
    context.total_steps(steps)
    for step in range(start + 1, steps + 1):
        if spec.labels.get("fail_at") == str(step):
            raise RuntimeError(f"failing at step {step} as asked")
        time.sleep(pause)
        state.write_text(json.dumps({"step": step}))
        context.step(step, {"reward_mean": step / steps, "accuracy": step / steps / 2, "version": step})
        stop = context.should_stop() and not spec.labels.get("ignore_stop")
        if stop and spec.labels.get("raise_on_stop"):
            raise RuntimeError("could not save on the way out")
        context.checkpoint(step, str(state), step, stop or step == steps)
        if stop:
            return
