"""The evaluator's Prometheus gauges: the numbers people watch pass@1 by, per benchmark and weight version.

r1_eval_pass_at_1{benchmark,model,weight_version}         mean correctness of k samples per question
r1_eval_pass_at_1_stderr{benchmark,model,weight_version}  its standard error over questions
r1_eval_cons_at_k{benchmark,model,weight_version}         majority-vote accuracy (math and choice benchmarks)
r1_eval_questions{benchmark,model,weight_version}         questions scored
r1_eval_seconds{benchmark,model,weight_version}           wall time of the benchmark's run
r1_eval_codeforces_rating{benchmark,model,weight_version} the Elo-model rating, when the problems are rated

Gauges rather than counters: each evaluation replaces its benchmark's value for that weight version, and a
Grafana panel plots pass@1 against weight_version. `r1 eval --metrics-port` serves them on the evaluator's own
/metrics; the trainer registers the same family for the held-out evaluations of its GRPO jobs
(benchmark="synthetic").
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Gauge

LABELS = ("benchmark", "model", "weight_version")


class EvalMetrics:
    def __init__(self, registry: CollectorRegistry):
        def gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, LABELS, registry=registry)

        self.pass_at_1 = gauge("r1_eval_pass_at_1", "Mean correctness of k samples per question.")
        self.pass_at_1_stderr = gauge("r1_eval_pass_at_1_stderr", "Standard error of pass@1 over questions.")
        self.cons_at_k = gauge("r1_eval_cons_at_k", "Majority-vote accuracy over k samples per question.")
        self.questions = gauge("r1_eval_questions", "Questions scored in the benchmark's last evaluation.")
        self.seconds = gauge("r1_eval_seconds", "Wall time of the benchmark's last evaluation.")
        self.rating = gauge("r1_eval_codeforces_rating", "Elo-model Codeforces rating over rated problems.")

    def observe_pass_at_1(self, benchmark: str, model: str, weight_version: int, value: float,
                          stderr: float = 0.0) -> None:
        labels = (benchmark, model, str(weight_version))
        self.pass_at_1.labels(*labels).set(value)
        self.pass_at_1_stderr.labels(*labels).set(stderr)

    def observe(self, benchmark: str, section: dict, model: str, weight_version: int) -> None:
        """Publish one scored benchmark (a results.json section)."""
        labels = (benchmark, model, str(weight_version))
        self.observe_pass_at_1(benchmark, model, weight_version, section["pass@1"]["value"],
                               section["pass@1"]["stderr"])
        if section.get("cons@k"):
            self.cons_at_k.labels(*labels).set(section["cons@k"]["value"])
        self.questions.labels(*labels).set(section["questions"])
        self.seconds.labels(*labels).set(section["seconds"])
        rating = (section.get("codeforces") or {}).get("rating")
        if rating is not None and not math.isinf(rating):
            self.rating.labels(*labels).set(rating)
