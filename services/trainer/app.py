"""Builds the trainer service for the bootstrap: config, the SQLite job store, the runner, metrics, servicer.

The store is opened and the runner started (after recovering jobs a killed predecessor left RUNNING) in the
service's `start`; `stop` asks running jobs to stop, which checkpoints them, and puts them back in the queue
for the next start. Step metrics of running jobs are exported as gauges labelled by job id:

r1_trainer_step{job_id}, r1_trainer_reward_mean{job_id}, r1_trainer_accuracy{job_id},
r1_trainer_length_mean{job_id}, r1_trainer_kl{job_id}, r1_trainer_step_seconds{job_id},
r1_trainer_weight_version{job_id}, r1_trainer_jobs{state}
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily

from r1.errors import InvalidArgument
from services.common.config import ServerConfig
from services.common.server import Service
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer.runner import JobRunner
from services.trainer.servicer import TrainerServicer
from services.trainer.store import JobStore

__all__ = ["Config", "TrainerSection", "build"]

STEP_GAUGES = ("step", "reward_mean", "accuracy", "length_mean", "kl", "step_seconds", "version")


@dataclass(frozen=True)
class TrainerSection:
    """jobs_root: where job directories go (empty: $R1_CACHE_DIR or ~/.cache/r1-stack, then trainer/jobs);
    database: the SQLite file (empty: <jobs_root>/jobs.sqlite3); max_concurrent_jobs; max_queued_jobs (more
    are refused with RESOURCE_EXHAUSTED); stop_seconds: how long shutdown waits for running jobs to
    checkpoint; job_function: "module:function" that runs a job (tests swap in their own)."""

    jobs_root: str = ""
    database: str = ""
    max_concurrent_jobs: int = 1
    max_queued_jobs: int = 64
    stop_seconds: float = 60.0
    job_function: str = "services.trainer.jobs:run_job"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    trainer: TrainerSection = field(default_factory=TrainerSection)

    def check(self) -> None:
        for name in ("max_concurrent_jobs", "max_queued_jobs"):
            if getattr(self.trainer, name) < 1:
                raise InvalidArgument(f"trainer.{name}", "must be >= 1")
        if ":" not in self.trainer.job_function:
            raise InvalidArgument("trainer.job_function", "must be \"module:function\"")


def jobs_root(section: TrainerSection) -> Path:
    if section.jobs_root:
        return Path(section.jobs_root)
    return Path(os.environ.get("R1_CACHE_DIR") or Path.home() / ".cache" / "r1-stack") / "trainer" / "jobs"


def _function(spec: str):
    module, name = spec.split(":", 1)
    return getattr(importlib.import_module(module), name)


def build(config: Config) -> Service:
    config.check()
    registry = CollectorRegistry()
    root = jobs_root(config.trainer)
    gauges = {name: Gauge(f"r1_trainer_{name if name != 'version' else 'weight_version'}",
                          f"Last step's {name} of each running job.", ["job_id"], registry=registry)
              for name in STEP_GAUGES}

    def on_metrics(job_id: str, values: dict[str, float]) -> None:
        for name, gauge in gauges.items():
            if name in values:
                gauge.labels(job_id=job_id).set(values[name])

    from services.trainer.jobs import validate_job

    servicer = TrainerServicer(root, config.trainer.max_queued_jobs, validate_job)

    def count_states():
        family = GaugeMetricFamily("r1_trainer_jobs", "Jobs by state.", labels=["state"])
        for value, state in pb.JobState.items():
            if state:
                family.add_metric([value.removeprefix("JOB_STATE_")], servicer.store.count(state))
        return family

    async def start() -> None:
        root.mkdir(parents=True, exist_ok=True)
        store = JobStore(config.trainer.database or root / "jobs.sqlite3")
        runner = JobRunner(store, _function(config.trainer.job_function), config.trainer.max_concurrent_jobs,
                           on_metrics)
        servicer.store, servicer.runner = store, runner
        runner.start()
        registry.register(_Collect(count_states))

    async def stop() -> None:
        if servicer.runner is not None:
            import asyncio

            await asyncio.to_thread(servicer.runner.stop, config.trainer.stop_seconds)
            servicer.store.close()

    return Service(
        name=pb.DESCRIPTOR.services_by_name["Trainer"].full_name,
        register=lambda server: trainer_pb2_grpc.add_TrainerServicer_to_server(servicer, server),
        start=start, stop=stop, registry=registry)


class _Collect:
    """The per-state job counts, read from the store whenever /metrics is scraped."""

    def __init__(self, family):
        self.family = family

    def collect(self):
        yield self.family()
