"""`r1 up`: the whole stack as local processes -- the non-Kubernetes path, what the demo does, for as long
as you want it.

Starts the enabled services (`python -m r1.cli serve NAME` each, `services/common/local.py`), waits until
every one answers health SERVING, prints where each listens, writes a state file (targets, metrics ports,
pids, logs) that scripts and Prometheus file-based discovery can read, then waits for SIGINT or SIGTERM and
drains them all with SIGTERM. Choices:
- Ports default to each service's registry defaults (50051..50054, metrics 9101..9104) so that clients and a
  Prometheus config work unchanged; 0 picks free ports (what tests use).
- The generation service serves `generation_model`: "teacher" is the tiny pretrained teacher (trained once,
  about 9 minutes on 2 cores, then cached), "" leaves the model to the generation service's own config.
- A service that fails to start stops the ones already up, and its log tail is in the error.

```yaml
host: 127.0.0.1
workdir: runs/up                 # logs, port files, state.json
generation_model: teacher        # or a checkpoint directory / hub id, or "" (see above)
generation: {port: 50051, metrics_port: 9101, config: "",
             set: ["engine.torch.spec_tokens=1", "engine.torch.spec_max_batch=1"]}
verifier: {enabled: true}
trainer: {set: ["trainer.jobs_root=runs/up/jobs"]}
exporter: {enabled: false}
```
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from r1.config import load_config
from r1.errors import InvalidArgument
from services.common.local import LocalService, LocalStack
from services.common.registry import SERVICES, entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceLaunch:
    """enabled: start it; port / metrics_port: -1 the service's default, 0 any free port; config: its
    `r1 serve --config` YAML; set: its `--set key=value` overrides; env: extra environment variables."""

    enabled: bool = True
    port: int = -1
    metrics_port: int = -1
    config: str = ""
    set: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpConfig:
    host: str = "127.0.0.1"
    workdir: str = "runs/up"
    generation_model: str = "teacher"
    ready_seconds: float = 600.0
    generation: ServiceLaunch = ServiceLaunch()
    verifier: ServiceLaunch = ServiceLaunch()
    trainer: ServiceLaunch = ServiceLaunch()
    exporter: ServiceLaunch = ServiceLaunch()

    def check(self) -> None:
        for name in SERVICES:
            launch: ServiceLaunch = getattr(self, name)
            for port_field in ("port", "metrics_port"):
                if not -1 <= getattr(launch, port_field) <= 65535:
                    raise InvalidArgument(f"{name}.{port_field}", f"must be -1 (default), 0 (any) or a port, got "
                                                                  f"{getattr(launch, port_field)}")
            if launch.config and not Path(launch.config).is_file():
                raise InvalidArgument(f"{name}.config", f"no such file: {launch.config}")
            bad = [item for item in launch.set if "=" not in item]
            if bad:
                raise InvalidArgument(f"{name}.set", f"expected key=value, got {bad[0]!r}")
        if not any(getattr(self, name).enabled for name in SERVICES):
            raise InvalidArgument("services", "every service is disabled; enable at least one")


def load_up_config(path: str | None, overrides: Iterable[str] = ()) -> UpConfig:
    config = load_config(UpConfig, path, overrides=overrides, environ={})
    config.check()
    return config


def serve_args(name: str, launch: ServiceLaunch, model: str) -> list[str]:
    """The `r1 serve NAME` arguments after the host and port ones."""
    args = ["--config", launch.config] if launch.config else []
    if name == "generation" and model:
        args += ["--set", f"engine.torch.model={model}"]
    for item in launch.set:
        args += ["--set", item]
    return args


def resolve_model(config: UpConfig) -> str:
    if config.generation_model != "teacher" or not config.generation.enabled:
        return config.generation_model
    from r1.model.pretrain import load_recipe, pretrain

    log.info("generation serves the tiny teacher (recipes/tiny-teacher.yaml; pretrained on first use)")
    return str(pretrain(load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "tiny-teacher.yaml")))


def build_stack(config: UpConfig) -> LocalStack:
    model = resolve_model(config)
    stack = LocalStack([], workdir=Path(config.workdir), ready_seconds=config.ready_seconds)
    for name in SERVICES:
        launch: ServiceLaunch = getattr(config, name)
        if launch.enabled:
            defaults = entry(name)
            stack.services[name] = LocalService(
                name, args=serve_args(name, launch, model), env=dict(launch.env), host=config.host,
                requested_port=defaults.port if launch.port < 0 else launch.port,
                requested_metrics_port=defaults.metrics_port if launch.metrics_port < 0 else launch.metrics_port)
    return stack


def state(stack: LocalStack) -> dict:
    return {name: {"target": s.target, "metrics": f"{s.host}:{s.metrics_port}", "pid": s.process.pid,
                   "log": str(s.log_path)} for name, s in stack.services.items()}


def run_up(config: UpConfig, state_file: str = "", on_ready: Callable[[dict], None] | None = None,
           stop: threading.Event | None = None) -> dict[str, int]:
    """Starts the stack, reports it, blocks until SIGINT/SIGTERM (or `stop` is set), drains it; returns the
    services' exit codes."""
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        stack = build_stack(config)
        with stack:
            for service in stack.services.values():  # `with` waited for health SERVING already
                log.info("%s SERVING on %s, metrics on %s:%s", service.name, service.target, service.host,
                         service.metrics_port)
            info = state(stack)
            path = Path(state_file) if state_file else Path(config.workdir) / "state.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(info, indent=2) + "\n")
            if on_ready is not None:
                on_ready(info)
            stop.wait()
            log.info("stopping: draining %s", ", ".join(stack.services))
        return {name: service.process.returncode for name, service in stack.services.items()}
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
