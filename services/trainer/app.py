"""Builds the trainer service for the bootstrap: config, the SQLite job store, the runner, metrics, servicer.

The store is opened and the runner started (after `recover` has put back the jobs a killed predecessor left
RUNNING or CANCELLING) in the service's `start`, off the event loop; health says SERVING once that is done.
`stop` runs after the gRPC server has drained: running jobs are asked to stop, save a checkpoint within
`trainer.stop_seconds` and go back to QUEUED for the next start; a job that overstays is left RUNNING in
the store and resumed all the same. So a SIGTERM'd trainer needs up to server.grace_seconds (open calls,
WatchJob streams included) plus trainer.stop_seconds to exit.

What runs a job is `trainer.job_function` ("module:function", default services.trainer.jobs:run_job, looked
up when the service is built); what checks one before it is accepted is services.trainer.jobs:validate_job.
`build(config, run_job=..., validate_job=...)` takes in-process replacements (tests).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from r1.errors import InvalidArgument
from services.common.config import ServerConfig
from services.common.server import Service
from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc
from services.trainer.jobs import JobSpec
from services.trainer.metrics import TrainerMetrics
from services.trainer.runner import JobRunner, RunJob
from services.trainer.servicer import TrainerServicer
from services.trainer.store import JobStore

__all__ = ["Config", "TrainerSection", "build", "jobs_root"]


@dataclass(frozen=True)
class TrainerSection:
    """The `trainer:` section.

    jobs_root: where job directories go, <jobs_root>/<job_id> (empty: $R1_CACHE_DIR, else ~/.cache/r1-stack,
        then trainer/jobs).
    database: the SQLite job store (empty: <jobs_root>/jobs.sqlite3); one trainer per file.
    max_concurrent_jobs: jobs RUNNING at once; the rest wait QUEUED, oldest first.
    max_queued_jobs: QUEUED jobs beyond which SubmitJob answers RESOURCE_EXHAUSTED.
    event_history: step, log and checkpoint events kept per job for WatchJob's history, oldest dropped
        first (state changes are always kept); 0 keeps all.
    stop_seconds: on shutdown, how long running jobs get to stop with a checkpoint.
    job_function: "module:function" that runs a job, `run_job(spec, context)` (tests name their own).
    """

    jobs_root: str = ""
    database: str = ""
    max_concurrent_jobs: int = 1
    max_queued_jobs: int = 64
    event_history: int = 10_000
    stop_seconds: float = 30.0
    job_function: str = "services.trainer.jobs:run_job"


@dataclass(frozen=True)
class Config:
    """server: see `ServerConfig`; trainer: see `TrainerSection`."""

    server: ServerConfig = field(default_factory=ServerConfig)
    trainer: TrainerSection = field(default_factory=TrainerSection)

    def check(self) -> None:
        for name in ("max_concurrent_jobs", "max_queued_jobs"):
            if getattr(self.trainer, name) < 1:
                raise InvalidArgument(f"trainer.{name}", f"must be >= 1, got {getattr(self.trainer, name)}")
        if self.trainer.event_history < 0:
            raise InvalidArgument("trainer.event_history", f"must be >= 0 (0 keeps all), got "
                                                           f"{self.trainer.event_history}")
        if self.trainer.stop_seconds < 0:
            raise InvalidArgument("trainer.stop_seconds", f"must be >= 0, got {self.trainer.stop_seconds}")


def jobs_root(section: TrainerSection) -> Path:
    if section.jobs_root:
        return Path(os.path.abspath(section.jobs_root))
    cache = os.environ.get("R1_CACHE_DIR") or Path.home() / ".cache" / "r1-stack"
    return Path(os.path.abspath(cache)) / "trainer" / "jobs"


def job_function(spec: str) -> RunJob:
    """The function named "module:function"; InvalidArgument naming trainer.job_function if there is none."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise InvalidArgument("trainer.job_function", f"{spec!r}: must be \"module:function\"")
    try:
        function = getattr(importlib.import_module(module), name, None)
    except ImportError as e:
        raise InvalidArgument("trainer.job_function", f"{spec!r}: cannot import {module}: {e}") from e
    if not callable(function):
        raise InvalidArgument("trainer.job_function", f"{spec!r}: {module} has no function {name}")
    return function


def build(config: Config, *, run_job: RunJob | None = None,
          validate_job: Callable[[JobSpec], None] | None = None) -> Service:
    config.check()
    section = config.trainer
    run_job = run_job or job_function(section.job_function)
    if validate_job is None:
        from services.trainer import jobs

        validate_job = getattr(jobs, "validate_job")
    root = jobs_root(section)
    database = Path(os.path.abspath(section.database)) if section.database else root / "jobs.sqlite3"
    registry = CollectorRegistry()
    metrics = TrainerMetrics(registry)
    servicer = TrainerServicer(root, section.max_queued_jobs, validate_job)
    metrics.watch(lambda: servicer.store.counts() if servicer.store is not None else {})

    def open_and_start() -> None:
        root.mkdir(parents=True, exist_ok=True)
        store = JobStore(database, section.event_history)
        runner = JobRunner(store, run_job, max_concurrent=section.max_concurrent_jobs, metrics=metrics)
        try:
            runner.start()
        except BaseException:
            store.close()
            raise
        servicer.store, servicer.runner = store, runner

    async def start() -> None:
        await asyncio.to_thread(open_and_start)

    async def stop() -> None:
        if servicer.runner is not None:
            await asyncio.to_thread(servicer.runner.stop, section.stop_seconds)
            servicer.store.close()

    return Service(
        name=pb.DESCRIPTOR.services_by_name["Trainer"].full_name,
        register=lambda server: trainer_pb2_grpc.add_TrainerServicer_to_server(servicer, server),
        start=start, stop=stop, registry=registry)
