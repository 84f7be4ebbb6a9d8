"""The trainer's own Prometheus metrics, next to the per-RPC ones every service has.

r1_trainer_jobs{state}                 jobs in each state (read from the job store at scrape time)
r1_trainer_step{job_id}                last completed step of each running job
r1_trainer_reward_mean{job_id}         its last step's mean reward (GRPO)
r1_trainer_accuracy{job_id}            its last step's accuracy: fraction of samples CORRECT (GRPO)
r1_trainer_length_mean{job_id}         its last step's mean completion length, tokens (GRPO)
r1_trainer_kl{job_id}                  its last step's mean KL to the reference policy (GRPO)
r1_trainer_loss{job_id}                its last step's loss
r1_trainer_step_seconds{job_id}        its last step's wall time
r1_trainer_sync_seconds{job_id}        its last step's weight sync: pushing the policy to the generation service
r1_trainer_weight_version{job_id}      the policy version it last pushed to the generation service
r1_eval_pass_at_1{benchmark,model,weight_version}   held-out pass@1 of each evaluation a GRPO job runs
                                       (benchmark "synthetic", model "job:<job_id>"), the evaluator's gauge

The per-job series exist while the job runs and are removed when it leaves RUNNING, so finished jobs do
not pile up as label values; the job's record (GetJob, WatchJob) keeps its metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily

from services.evaluator.metrics import EvalMetrics
from services.protogen.trainer.v1 import trainer_pb2 as pb

# metric suffix -> the StepMetrics.values key it shows
STEP_VALUES = {"reward_mean": "reward_mean", "accuracy": "accuracy", "length_mean": "length_mean", "kl": "kl",
               "loss": "loss", "step_seconds": "step_seconds", "sync_seconds": "sync_seconds"}


class TrainerMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.step = Gauge("r1_trainer_step", "Last completed step of each running job.", ["job_id"],
                          registry=registry)
        self.version = Gauge("r1_trainer_weight_version", "Policy version each running job last pushed.",
                             ["job_id"], registry=registry)
        self.values = {suffix: Gauge(f"r1_trainer_{suffix}", f"Last step's {key} of each running job.", ["job_id"],
                                     registry=registry) for suffix, key in STEP_VALUES.items()}
        self.evaluations = EvalMetrics(registry)
        self._lock = threading.Lock()
        self._jobs: set[str] = set()

    def watch(self, counts: Callable[[], dict[int, int]]) -> None:
        """Publish r1_trainer_jobs{state} from `counts()` (jobs per state) at every scrape."""
        self.registry.register(_JobCounts(counts))

    def observe_step(self, job_id: str, step: int, values: dict[str, float], weight_version: int) -> None:
        with self._lock:
            self._jobs.add(job_id)
            self.step.labels(job_id).set(step)
            self.version.labels(job_id).set(weight_version)
            for suffix, key in STEP_VALUES.items():
                if key in values:
                    self.values[suffix].labels(job_id).set(values[key])

    def observe_evaluation(self, job_id: str, benchmark: str, weight_version: int, pass_at_1: float) -> None:
        """Kept after the job ends: one series per evaluated weight version, which Grafana plots over versions."""
        self.evaluations.observe_pass_at_1(benchmark, f"job:{job_id}", weight_version, pass_at_1)

    def forget(self, job_id: str) -> None:
        """The job left RUNNING: drop its series."""
        with self._lock:
            if job_id not in self._jobs:
                return
            self._jobs.discard(job_id)
            for gauge in (self.step, self.version, *self.values.values()):
                try:
                    gauge.remove(job_id)
                except KeyError:
                    pass


class _JobCounts:
    def __init__(self, counts: Callable[[], dict[int, int]]):
        self.counts = counts

    def collect(self):
        family = GaugeMetricFamily("r1_trainer_jobs", "Jobs in each state.", labels=["state"])
        counts = self.counts()
        for name, state in pb.JobState.items():
            if state:
                family.add_metric([name.removeprefix("JOB_STATE_")], counts.get(state, 0))
        yield family
