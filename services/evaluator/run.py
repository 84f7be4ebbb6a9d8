"""`r1 eval`, wired: the generation service's client (or our engine in-process), the verifier service's
client (or the in-process verifier), the evaluator's /metrics, then the evaluation workflow
(`r1/eval/runner.py`).

Choices:
- With `metrics_port >= 0` the gauges (`services/evaluator/metrics.py`) are served while the run goes and,
  with `linger_seconds`, for that long after it, so that a Prometheus scrape interval catches a short run
  (the Kubernetes CronJob path); the bound port is logged and written to `port_file` if given.
- A tokenizer is loaded only for the "chat" frame; `tokenizer` is a directory or hub id (offline: a local
  directory). With `--model` in-process, the engine's own tokenizer is used.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from r1.errors import InvalidArgument
from r1.eval.protocol import EvalSettings
from r1.eval.runner import InProcessGeneration, evaluate
from services.evaluator.metrics import EvalMetrics

log = logging.getLogger(__name__)


@dataclass
class EvalRun:
    """What `r1 eval` was asked; see its --help for each field."""

    benchmarks: list[str]
    output: str
    settings: EvalSettings
    target: str = ""
    model: str = ""
    verifier_target: str = ""
    token: str = ""
    root_certificates: bytes | None = None
    tokenizer: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    fresh: bool = False
    progress: bool = True
    metrics_port: int = -1
    metrics_host: str = "0.0.0.0"
    linger_seconds: float = 0.0
    port_file: str = ""


def _generation(run: EvalRun):
    if run.target:
        from services.generation.client import GenerationClient

        return GenerationClient(run.target, token=run.token, root_certificates=run.root_certificates)
    if not run.model:
        raise InvalidArgument("--target", "give the generation service's host:port, or --model DIR to evaluate "
                                          "a checkpoint in-process")
    return InProcessGeneration(run.model)


def _verifier(run: EvalRun):
    if run.verifier_target:
        from services.verifier.client import VerifierClient

        return VerifierClient(run.verifier_target, token=run.token, root_certificates=run.root_certificates)
    from r1.rewards.verifier import Verifier, VerifierConfig

    return Verifier(VerifierConfig())


def _tokenizer(run: EvalRun, generation):
    if run.settings.frame != "chat":
        return None
    if run.tokenizer:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(run.tokenizer)
    if isinstance(generation, InProcessGeneration):
        return generation.tokenizer
    raise InvalidArgument("--tokenizer", "the 'chat' frame needs the served model's tokenizer (a directory or hub "
                                         "id) to apply its chat template")


def run_eval(run: EvalRun) -> dict:
    registry = CollectorRegistry()
    gauges = EvalMetrics(registry)
    http = None
    if run.metrics_port >= 0:
        http, _ = start_http_server(run.metrics_port, addr=run.metrics_host, registry=registry)
        log.info("evaluator metrics on %s:%d/metrics", run.metrics_host, http.server_port)
        if run.port_file:
            Path(run.port_file).write_text(json.dumps({"metrics_port": http.server_port}))
    generation = _generation(run)
    try:
        with _verifier(run) as verifier:
            results = evaluate(
                run.benchmarks, generation, verifier, run.settings, run.output, sources=run.sources,
                tokenizer=_tokenizer(run, generation), fresh=run.fresh, progress=run.progress,
                target=run.target or f"in-process {run.model}",
                on_benchmark=lambda name, section, info: gauges.observe(name, section, info.model_id,
                                                                        info.weight_version))
        if http is not None and run.linger_seconds > 0:
            log.info("serving /metrics for %.0f s more", run.linger_seconds)
            time.sleep(run.linger_seconds)
        return results
    finally:
        generation.close()
        if http is not None:
            http.shutdown()
