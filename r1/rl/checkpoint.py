"""Training checkpoints that survive `kill -9`: written whole or not at all, and enough to resume exactly.

A checkpoint is a directory `<root>/step-<N>/` with
- the policy weights in the Hugging Face layout (`save_policy`: DeepSeek-V3 names for our teacher, the
  transformers files for a student), so Generation.LoadCheckpoint and the exporter read it as is;
- `trainer_state.pt`: step, weight version, optimizer (and LR-scheduler) state, Python and torch RNG
  states, the data cursor, and whatever history the workflow keeps (metrics, evaluations).

Atomicity (the same recipe as torch.distributed.checkpoint and Orbax): everything goes into
`step-<N>.tmp-<pid>/`, every file is fsync'ed, the directory is renamed into place and the parent fsync'ed;
then `latest` (a one-line text file naming the directory) is replaced by the same write-fsync-rename. A
crash at any point leaves either the previous checkpoint or the new one, never a torn one; leftover `.tmp-`
directories are ignored and swept on the next save. `latest_checkpoint` trusts `latest` only if it names a
complete directory, else falls back to the highest complete `step-<N>`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from r1.errors import FailedPrecondition

STATE_FILE = "trainer_state.pt"
LATEST = "latest"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class TrainingState:
    """What a resumed run needs besides the weights: step and weight version reached, optimizer and
    scheduler states, RNG states, the data cursor, and the workflow's own history."""

    step: int
    version: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any]
    cursor: dict[str, Any]
    history: dict[str, Any]


def rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "torch": torch.get_rng_state()}


def restore_rng(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])


def save_policy(model, directory: Path, tokenizer=None) -> None:
    """The weights in the layout the generation service and the exporter load."""
    from r1.model.checkpoint import save_pretrained
    from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

    if isinstance(model, DeepSeekV3ForCausalLM):
        save_pretrained(model, directory, tokenizer=tokenizer)
    else:
        model.save_pretrained(directory)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)


def save_checkpoint(root: str | Path, model, state: TrainingState, tokenizer=None, keep: int = 2) -> Path:
    """Writes `<root>/step-<state.step>` atomically, points `latest` at it, keeps the newest `keep`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step:06d}"
    staging = root / f"{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    save_policy(model, staging, tokenizer)
    torch.save(vars(state), staging / STATE_FILE)
    for path in staging.iterdir():
        _fsync_file(path)
    _fsync_dir(staging)
    if final.exists():  # a re-save of the same step (e.g. the final checkpoint of a cancelled job)
        shutil.rmtree(final)
    staging.rename(final)
    _fsync_dir(root)
    _write_atomically(root / LATEST, final.name + "\n")
    _prune(root, keep)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under `root`, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    pointer = root / LATEST
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if _STEP_DIR.match(named.name) and (named / STATE_FILE).is_file():
            return named
    complete = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return max(complete, key=lambda p: int(_STEP_DIR.match(p.name)[1]), default=None)


def load_state(checkpoint: str | Path) -> TrainingState:
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        raise FailedPrecondition(f"{checkpoint} is not a training checkpoint (no {STATE_FILE}); resume from a "
                                 "directory written by save_checkpoint")
    return TrainingState(**torch.load(path, weights_only=False))


def load_policy_weights(model, checkpoint: str | Path) -> None:
    """Copies the checkpoint's weights into `model` in place (so optimizer references stay valid)."""
    from r1.model.checkpoint import load_pretrained
    from r1.model.deepseek_v3 import DeepSeekV3ForCausalLM

    if isinstance(model, DeepSeekV3ForCausalLM):
        saved = load_pretrained(checkpoint).state_dict()
    else:
        saved = type(model).from_pretrained(checkpoint, dtype=next(model.parameters()).dtype).state_dict()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(saved[name])


def _prune(root: Path, keep: int) -> None:
    steps = sorted((p for p in root.iterdir() if _STEP_DIR.match(p.name)), key=lambda p: p.name)
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob("step-*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(staging, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _fsync_file(child)
        _fsync_dir(path)
        return
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
