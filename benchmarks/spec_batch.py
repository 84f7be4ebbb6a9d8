"""Where MTP speculation stops paying: our engine plain against MTP k = 1 over batch sizes.

    PYTHONPATH=. .venv/bin/python benchmarks/spec_batch.py [--model DIR] [--batches 1,4,8,16,32,64]
        [--tokens 64] [--temperature 1.0] [--threads 1]

Each batch is that many samples decoded at once (prompts x 8 samples from 8 on, single samples below), of
exactly `--tokens` new tokens (eos ignored) at the RL rollout temperature, on the tiny teacher unless
`--model` names a checkpoint; best of two runs each. The ratio is plain seconds over MTP seconds (above 1:
speculation helps). It is what `spec_max_batch` is set from: speculate only in steps of at most that many
samples (vLLM's speculative_disable_by_batch_size).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform

import torch

from benchmarks.generation import prompts, run_engine, teacher_directory
from r1.engine.types import GenerationRequest, SamplingParams


def requests(prompt_ids: list[list[int]], batch: int, tokens: int, temperature: float) -> list[GenerationRequest]:
    n = 8 if batch >= 8 else 1
    sampling = SamplingParams(temperature=temperature, max_tokens=tokens, ignore_eos=True, seed=0)
    return [GenerationRequest(f"b{batch}-{i}", prompt_ids[i], n, sampling) for i in range(batch // n)]


def best_seconds(directory: str, batch: list[GenerationRequest], spec_tokens: int) -> float:
    return min(asyncio.run(run_engine(directory, batch, spec_tokens=spec_tokens))[1] for _ in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--batches", default="1,4,8,16,32,64")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from r1.model.tokenizer import load_tokenizer

    directory = teacher_directory(args.model)
    batches = [int(b) for b in args.batches.split(",")]
    prompt_ids = prompts(load_tokenizer(directory), max(batches))
    print(f"{platform.machine()}, {os.cpu_count()} cores ({args.threads} threads); teacher {directory}; "
          f"{args.tokens} tokens, T = {args.temperature}")
    for size in batches:
        batch = requests(prompt_ids, size, args.tokens, args.temperature)
        plain, mtp = best_seconds(directory, batch, 0), best_seconds(directory, batch, 1)
        print(f"batch {size:3d}: plain {plain:.3f} s, MTP k=1 {mtp:.3f} s, ratio {plain / mtp:.2f}x")


if __name__ == "__main__":
    main()
