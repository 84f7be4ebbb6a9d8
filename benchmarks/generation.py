"""Generation throughput: our torch engine against transformers `generate()`, on the same teacher and prompts.

    PYTHONPATH=. .venv/bin/python benchmarks/generation.py [--model DIR] [--prompts 64] [--n 8] [--tokens 64]
        [--threads N]

The teacher is the pretrained tiny teacher (`recipes/tiny-teacher.yaml`, trained once and cached) unless
`--model` names a checkpoint; prompts are R1-Zero prompts of held-out synthetic problems.

(a) Batched sampling, the RL rollout shape: `--prompts` prompts x `--n` samples, exactly `--tokens` new tokens
    each (eos ignored, so both sides do the same work), temperature 0.6, top-p 0.95. Ours: every request
    submitted at once to one engine (continuous batching, prefill shared by the n samples). transformers: one
    `generate(num_return_sequences=n)` over all prompts, left-padded, with its cache. Ratio: tokens/s.
(b) Batch 1 greedy, the latency shape: each prompt alone until eos or `--tokens`; our engine plain, our
    engine with MTP speculation (k = 1, 2), transformers plain and with `use_mtp=True`. Our speculative
    outputs are asserted identical to our plain ones; agreement with transformers is printed. Acceptance is
    per draft position. transformers finds MTP weights through DeepseekV3's
    `_keys_to_ignore_on_load_unexpected`, which names layer 61 (the 671B layout) only; for a smaller teacher
    the benchmark points that pattern at the teacher's MTP layer on the loaded instance, after which
    transformers loads our MTP weights unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time

import torch

from r1.engine.observer import NullObserver
from r1.engine.torch_engine import TorchEngine, TorchEngineConfig
from r1.engine.types import GenerationRequest, SampleOutput, SamplingParams


class Acceptance(NullObserver):
    """Counts speculative drafts and acceptances per draft position."""

    def __init__(self, k: int):
        self.steps, self.accepted = 0, [0] * k

    def speculation(self, drafted: int, accepted_per_position: list[int]) -> None:
        self.steps += drafted // len(self.accepted)
        self.accepted = [a + b for a, b in zip(self.accepted, accepted_per_position)]

    def rates(self) -> list[float]:
        return [a / max(1, self.steps) for a in self.accepted]


def teacher_directory(model: str | None) -> str:
    if model:
        return model
    from r1.model.pretrain import load_recipe, pretrain

    return str(pretrain(load_recipe(os.path.join(os.path.dirname(__file__), "..", "recipes", "tiny-teacher.yaml"))))


def prompts(tokenizer, count: int) -> list[list[int]]:
    from r1.data.synthetic import split
    from r1.model.tokenizer import r1_zero_prompt

    tasks = ["arithmetic", "linear", "fractions", "word", "countdown"]
    _, heldout = split(tasks, 1000, count, seed=123)
    return [tokenizer(r1_zero_prompt(p.prompt))["input_ids"] for p in heldout[:count]]


async def run_engine(directory: str, requests: list[GenerationRequest], spec_tokens: int = 0,
                     one_at_a_time: bool = False, max_num_seqs: int = 512,
                     observer=None) -> tuple[list[list[SampleOutput]], float]:
    engine = TorchEngine(TorchEngineConfig(model=directory, spec_tokens=spec_tokens, max_num_seqs=max_num_seqs),
                         observer=observer)
    await engine.start()

    async def one(request):
        outputs = [item async for item in engine.generate(request) if isinstance(item, SampleOutput)]
        return sorted(outputs, key=lambda o: o.index)

    await one(GenerationRequest("warm-up", requests[0].prompt_ids, sampling=SamplingParams(max_tokens=4)))
    started = time.perf_counter()
    if one_at_a_time:
        results = [await one(r) for r in requests]
    else:
        results = await asyncio.gather(*(one(r) for r in requests))
    seconds = time.perf_counter() - started
    await engine.close()
    return results, seconds


def transformers_model(directory: str):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    layers = model.config.num_hidden_layers
    model._keys_to_ignore_on_load_unexpected = [rf"model\.layers\.{layers}\..*"]
    return model


def batched(directory, tokenizer, prompt_ids, n, tokens) -> dict[str, float]:
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=tokens, ignore_eos=True, seed=0)
    requests = [GenerationRequest(f"b{i}", tuple(p), n=n, sampling=sampling) for i, p in enumerate(prompt_ids)]
    results, ours = asyncio.run(run_engine(directory, requests))
    produced = sum(len(o.token_ids) for r in results for o in r)
    assert produced == len(prompt_ids) * n * tokens
    model = transformers_model(directory)
    longest = max(len(p) for p in prompt_ids)
    ids = torch.tensor([[tokenizer.pad_token_id] * (longest - len(p)) + p for p in prompt_ids])
    mask = (torch.arange(longest)[None] >= torch.tensor([longest - len(p) for p in prompt_ids])[:, None]).long()
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, do_sample=True, temperature=0.6, top_p=0.95, top_k=0,
                             num_return_sequences=n, max_new_tokens=tokens, min_new_tokens=tokens,
                             pad_token_id=tokenizer.pad_token_id)
    theirs = time.perf_counter() - started
    assert out.shape == (len(prompt_ids) * n, longest + tokens)
    return {"ours": produced / ours, "theirs": produced / theirs}


def latency(directory, prompt_ids, tokens) -> dict[str, object]:
    greedy = SamplingParams(temperature=0, max_tokens=tokens)
    requests = [GenerationRequest(f"l{i}", tuple(p), sampling=greedy) for i, p in enumerate(prompt_ids)]
    rows: dict[str, object] = {}
    plain, seconds = asyncio.run(run_engine(directory, requests, one_at_a_time=True))
    produced = sum(len(r[0].token_ids) for r in plain)
    rows["ours, plain"] = (produced / seconds, None)
    for k in (1, 2):
        counter = Acceptance(k)
        outputs, seconds = asyncio.run(run_engine(directory, requests, spec_tokens=k, one_at_a_time=True,
                                                  observer=counter))
        assert [r[0].token_ids for r in outputs] == [r[0].token_ids for r in plain], "speculation changed the output"
        rates = ", ".join(f"position {j + 1}: {rate:.1%}" for j, rate in enumerate(counter.rates()))
        rows[f"ours, MTP k={k}"] = (produced / seconds, f"acceptance {rates}")
    model = transformers_model(directory)
    for name, extra in (("transformers, plain", {}), ("transformers, use_mtp=True", {"use_mtp": True})):
        agree, total = 0, 0
        started = time.perf_counter()
        for prompt, mine in zip(prompt_ids, plain):
            with torch.no_grad():
                out = model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=tokens,
                                     eos_token_id=model.config.eos_token_id, **extra)[0, len(prompt):].tolist()
            total += len(out)
            agree += out == list(mine[0].token_ids)
        rows[name] = (total / (time.perf_counter() - started), f"{agree}/{len(prompt_ids)} outputs equal ours")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--latency-prompts", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads for both sides (0: torch's "
                                                                "default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    from r1.model.tokenizer import load_tokenizer

    directory = teacher_directory(args.model)
    tokenizer = load_tokenizer(directory)
    prompt_ids = prompts(tokenizer, args.prompts)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), transformers {transformers.__version__}; teacher {directory}")
    a = batched(directory, tokenizer, prompt_ids, args.n, args.tokens)
    print(f"\n(a) {args.prompts} prompts x n={args.n}, {args.tokens} new tokens, T=0.6, top-p 0.95")
    print(f"{'':<28}{'tokens/s':>10}")
    print(f"{'ours (torch engine)':<28}{a['ours']:>10.0f}\n{'transformers generate()':<28}{a['theirs']:>10.0f}")
    print(f"ratio ours / transformers: {a['ours'] / a['theirs']:.2f}x (target >= 3x)")
    rows = latency(directory, prompt_ids[:args.latency_prompts], args.tokens)
    print(f"\n(b) batch 1 greedy, {args.latency_prompts} prompts one at a time, up to {args.tokens} tokens")
    base = rows["ours, plain"][0]
    print(f"{'':<30}{'tokens/s':>10}{'vs ours plain':>15}  note")
    for name, (rate, note) in rows.items():
        print(f"{name:<30}{rate:>10.1f}{rate / base:>14.2f}x  {note or ''}")
    print("speculative outputs identical to plain decoding: yes (asserted)")


if __name__ == "__main__":
    main()
