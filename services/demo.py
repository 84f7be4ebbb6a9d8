"""`make demo`: start the stack as local processes and show what it does, with numbers it measured.

First the tiny teacher R1-Zero starts from (the `teacher_recipe` of `recipes/r1-zero-tiny.yaml`, i.e.
`recipes/tiny-teacher-word.yaml`): pretrained once (about 4 minutes on 2 cores, with a progress bar) and reused
from the content-addressed cache afterwards. Then the demo starts all four services
on 127.0.0.1 (the generation service serving that teacher with MTP speculation), waits for health SERVING,
lists what each one's reflection exposes, calls one RPC of each (those not built yet answer UNIMPLEMENTED,
and the demo says so), reads the per-RPC counters back from each `/metrics` endpoint; runs an embedded mixed
batch through the verifier (`demo_verifier.py`); samples the teacher's held-out problems through the
generation service and scores them with the verifier (`demo_generation.py`); then drains every service with
SIGTERM and reports the exit codes. In between, R1-Zero in miniature runs through these services
(`demo_trainer.py`): a GRPO job on the trainer service, rollouts from the generation service, rewards from
the verifier service, each new policy pushed back to the generation service; then the policy it leaves
served is evaluated with the R1 protocol through generation -> verifier (`demo_eval.py`).
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from services.common.local import LocalStack, health_status
from services.common.registry import SERVICES
from services.demo_generation import show_generation
from services.demo_eval import show_evaluation
from services.demo_trainer import RECIPE as R1_ZERO_RECIPE, show_trainer
from services.demo_verifier import show_verifier


# One cheap, argument-free RPC per service, to show the contract is live end to end.
PROBES = {
    "generation": ("r1.generation.v1.Generation", "GetModelInfo"),
    "verifier": ("r1.verifier.v1.Verifier", "ListKinds"),
    "trainer": ("r1.trainer.v1.Trainer", "ListJobs"),
    "exporter": ("r1.exporter.v1.Exporter", "GetExport"),
}


def reflected_services(target: str) -> list[str]:
    with grpc.insecure_channel(target) as channel:
        return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())


def probe(target: str, service: str, method: str) -> tuple[str, float]:
    """Call `method` with an empty request (raw bytes, no stubs needed); returns (status code, seconds)."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(f"/{service}/{method}", request_serializer=None, response_deserializer=None)
        start = time.perf_counter()
        try:
            call(b"", timeout=5)
            code = "OK"
        except grpc.RpcError as e:
            code = e.code().name
        return code, time.perf_counter() - start


def rpc_counts(metrics_port: int) -> dict[tuple[str, str, str], float]:
    """r1_grpc_requests_total by (service, method, code), read from the live endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    counts = {}
    for family in text_string_to_metric_families(text):
        if family.name == "r1_grpc_requests":
            for sample in family.samples:
                if sample.name == "r1_grpc_requests_total":
                    labels = sample.labels
                    counts[(labels["service"], labels["method"], labels["code"])] = sample.value
    return counts


def pretrained_teacher(console: Console):
    """The checkpoint directory of the teacher R1-Zero starts from, and its recipe's held-out problems (pretrained
    on first use)."""
    import json

    from r1.model.pretrain import load_recipe, pretrain, problems
    from r1.rl.recipe import load_grpo_recipe, teacher_recipe_path

    name = load_grpo_recipe(R1_ZERO_RECIPE).teacher_recipe
    recipe = load_recipe(teacher_recipe_path(name))
    console.rule(f"the tiny teacher ({name})")
    directory = pretrain(recipe)
    metrics = json.loads((directory / "metrics.json").read_text())
    console.print(f"{directory}: {metrics['parameters']:,} parameters, {metrics['steps']} steps in "
                  f"{metrics['train_seconds'] / 60:.1f} min; greedy held-out accuracy "
                  f"{metrics['heldout_accuracy']:.1%}, MTP next-next-token accuracy "
                  f"{metrics['mtp_next_next_token_accuracy']:.1%}")
    return directory, problems(recipe.data)[1]


def run_demo(rl_minutes: float | None = None, rl_eval_problems: int | None = None) -> int:
    """rl_minutes / rl_eval_problems: shorten the R1-Zero run (default: recipes/r1-zero-tiny.yaml's 10 minutes
    and 200 held-out problems); the test suite runs a short one."""
    console = Console(width=max(Console().width, 130))
    teacher, heldout = pretrained_teacher(console)
    console.rule("r1-stack demo: the four services on 127.0.0.1")
    started = time.perf_counter()
    serve_teacher = ["--set", f"engine.torch.model={teacher}", "--set", "engine.torch.spec_tokens=1",
                     "--set", "engine.torch.spec_max_batch=1", "--set", "engine.torch.threads=1"]
    jobs_root = Path("runs") / "demo"  # kept after the demo: the curves and metrics it points at live here
    stack = LocalStack(list(SERVICES), args={"generation": serve_teacher,
                                             "trainer": ["--set", f"trainer.jobs_root={jobs_root.resolve()}"]})
    with stack:
        console.print(f"all four SERVING after {time.perf_counter() - started:.1f}s "
                      f"(process start, imports, health wait)")
        table = Table("service", "address", "health", "reflection", "probe", "/metrics (r1_grpc_requests_total)")
        for name, service in stack.services.items():
            proto_service, method = PROBES[name]
            code, seconds = probe(service.target, proto_service, method)
            reflected = reflected_services(service.target)
            counts = rpc_counts(service.metrics_port)
            table.add_row(
                name, service.target, health_status(service.target),
                f"{proto_service.rsplit('.', 1)[1]} + {len(reflected) - 1} more",
                f"{method}: {code}, {seconds * 1000:.1f} ms",
                ", ".join(f"{m} {c}={v:.0f}" for (_, m, c), v in sorted(counts.items())))
        console.print(table)
        console.print("UNIMPLEMENTED is the honest answer of the exporter, whose RPCs a later issue builds.")
        verifier, generation = stack.services["verifier"], stack.services["generation"]
        agreed = show_verifier(console, verifier.target, verifier.metrics_port)
        generated = show_generation(console, generation.target, generation.metrics_port, verifier.target,
                                    heldout[::max(1, len(heldout) // 20)][:20])
        trainer = stack.services["trainer"]
        trained = show_trainer(console, trainer.target, trainer.metrics_port, generation.target, verifier.target,
                               teacher, rl_minutes, rl_eval_problems)
        evaluated = trained and show_evaluation(console, generation.target, verifier.target, jobs_root / "eval")
    codes = {name: service.process.returncode for name, service in stack.services.items()}
    console.print(f"SIGTERM drain exit codes: {codes}")
    return 0 if agreed and generated and trained and evaluated and all(code == 0 for code in codes.values()) else 1
