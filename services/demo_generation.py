"""The generation part of `make demo`: the pretrained tiny teacher samples held-out problems, the verifier scores.

The evaluation flow of the architecture in miniature, through the live services: held-out problems of the
teacher's own recipe (never seen in its training) in the R1-Zero prompt go to the generation service (n
samples each, the R1 protocol's temperature 0.6 and top-p 0.95, MTP speculation in steps of one sample),
every sample goes to the verifier's math checker (strict profile, as RL scores it), and the demo prints
pass@1 per task, the generation throughput, and the speculative-decoding acceptance the service's /metrics
counted.
"""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from r1.data.synthetic import Problem
from r1.engine.types import SamplingParams
from r1.model.pretrain import reference_answer
from r1.model.tokenizer import r1_zero_prompt
from r1.rewards.items import Item, MathCheck
from r1.rewards.math import Profile
from services.generation.client import GenerationClient
from services.verifier.client import VerifierClient

SAMPLING = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=128, seed=0)


def metric_totals(metrics_port: int, names: set[str]) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
                totals[key] += sample.value
    return totals


def show_generation(console: Console, generation_target: str, generation_metrics_port: int,
                    verifier_target: str, chosen: list[Problem], n: int = 4) -> bool:
    """Runs the flow on `chosen` (held-out problems of the teacher's recipe); returns True when every sample
    came back, was scored, and was counted by the service's metrics."""
    console.rule(f"generation -> verifier: {len(chosen)} held-out problems x n={n}, T=0.6, top-p 0.95")
    with GenerationClient(generation_target, timeout=300) as generation:
        info = generation.model_info()
        console.print(f"serving {info.architecture} ({info.parameter_count:,} parameters, MTP depth "
                      f"{info.mtp_depth}, {info.spec_tokens} draft token(s) per step) from {info.checkpoint}")
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:  # concurrent requests: the engine batches them
            samples = list(pool.map(lambda p: generation.generate(r1_zero_prompt(p.prompt), n=n, sampling=SAMPLING,
                                                                  request_id=f"demo-{p.id}"), chosen))
        seconds = time.perf_counter() - started
    tokens = sum(len(s.token_ids) for outputs in samples for s in outputs)
    items = [Item(s.text, MathCheck(reference_answer(p), Profile.STRICT), id=f"{p.id}/{s.index}")
             for p, outputs in zip(chosen, samples) for s in outputs]
    with VerifierClient(verifier_target, timeout=300) as verifier:
        verdicts = {v.id: v.result for v in verifier.verify_batch(items)}
    table = Table("task", "problems", "samples", "pass@1", "mean length (tokens)")
    by_task: dict[str, list] = defaultdict(list)
    for p, outputs in zip(chosen, samples):
        by_task[p.task] += [(verdicts[f"{p.id}/{s.index}"].reward, len(s.token_ids)) for s in outputs]
    for task, scored in sorted(by_task.items()):
        table.add_row(task, str(len(scored) // n), str(len(scored)), f"{sum(r for r, _ in scored) / len(scored):.2f}",
                      f"{sum(t for _, t in scored) / len(scored):.0f}")
    every = [r for scored in by_task.values() for r, _ in scored]
    table.add_row("all", str(len(chosen)), str(len(every)), f"{sum(every) / len(every):.2f}", "")
    console.print(table)
    console.print(f"{tokens} tokens generated in {seconds:.1f}s ({tokens / seconds:.0f} tokens/s, {len(chosen)} "
                  f"concurrent requests through the engine's continuous batching)")
    totals = metric_totals(generation_metrics_port, {"r1_spec_decode_draft_tokens_total",
                                                     "r1_spec_decode_accepted_tokens_total",
                                                     "r1_generation_tokens_total"})
    drafted = totals.get("r1_spec_decode_draft_tokens_total", 0.0)
    accepted = totals.get("r1_spec_decode_accepted_tokens_total", 0.0)
    if drafted:
        console.print(f"MTP speculation (from /metrics): {accepted:.0f} of {drafted:.0f} draft tokens accepted "
                      f"({accepted / drafted:.0%})")
    else:
        console.print("MTP speculation (from /metrics): no drafts: the engine speculates only in steps of at most "
                      "spec_max_batch samples (1 here: on CPU, MTP pays only for a lone sample, "
                      "benchmarks/spec_batch.py)")
    counted = totals.get("r1_generation_tokens_total{kind=completion}", 0.0)
    console.print(f"r1_generation_tokens_total{{kind=completion}}: {counted:.0f}")
    return len(verdicts) == len(items) == len(chosen) * n and counted >= tokens
