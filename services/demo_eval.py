"""The demo's evaluation: the policy the generation service serves after R1-Zero in miniature, evaluated with
the R1 protocol through the generation and verifier services (`r1/eval/runner.py`, what `r1 eval --target`
runs), on the synthetic held-out set and a slice of MATH-500 (the tiny teacher scores near 0 there: the point
is that every stage runs), with the report's path and the r1_eval_* gauges read back from the evaluator's
/metrics endpoint.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console
from rich.table import Table

from r1.eval.protocol import EvalSettings
from r1.eval.runner import evaluate
from services.evaluator.metrics import EvalMetrics
from services.generation.client import GenerationClient
from services.verifier.client import VerifierClient

BENCHMARKS = {"synthetic": 100, "math500": 20}  # name -> questions


def show_evaluation(console: Console, generation_target: str, verifier_target: str, output: Path) -> bool:
    console.rule("evaluation (R1 protocol: k=4, T=0.6, top-p 0.95) through generation -> verifier")
    registry = CollectorRegistry()
    gauges = EvalMetrics(registry)
    http, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        results = {}
        with GenerationClient(generation_target) as generation, VerifierClient(verifier_target) as verifier:
            for name, questions in BENCHMARKS.items():
                settings = EvalSettings(k=4, max_tokens=96, limit=questions, frame="r1-zero", concurrency=8)
                results = evaluate([name], generation, verifier, settings, output / name, progress=False,
                                   fresh=True, target=generation_target,
                                   on_benchmark=lambda n, section, info: gauges.observe(n, section, info.model_id,
                                                                                        info.weight_version))
                show_results(console, results)
        url = f"http://127.0.0.1:{http.server_port}/metrics"
        lines = [line for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines()
                 if line.startswith(("r1_eval_pass_at_1{", "r1_eval_cons_at_k{"))]
        console.print(f"evaluator metrics endpoint {url} (served by `r1 eval --metrics-port`):")
        for line in lines:
            console.print(f"  {line}")
        console.print(f"reports: {', '.join(str(output / name / 'report.md') for name in BENCHMARKS)}")
        return len(lines) >= 2 * len(BENCHMARKS)
    finally:
        http.shutdown()


def show_results(console: Console, results: dict) -> None:
    table = Table("benchmark", "weight version", "questions x k", "pass@1", "cons@4", "pass@4", "mean tokens",
                  "verdicts", "seconds")
    for name, section in results["benchmarks"].items():
        table.add_row(name, str(results["weight_version"]), f"{section['questions']} x {section['settings']['k']}",
                      f"{section['pass@1']['value']:.1%} ± {section['pass@1']['stderr']:.1%}",
                      f"{section['cons@k']['value']:.1%}", f"{section['pass@k']['4']:.1%}",
                      f"{section['lengths']['all']['mean']:.1f}",
                      ", ".join(f"{v} {n}" for v, n in section["verdicts"].items()), f"{section['seconds']:.1f}")
    console.print(table)
