"""The demo's R1-Zero in miniature: a GRPO job submitted to the trainer service, which samples from the
generation service, is rewarded by the verifier service and pushes every new policy back to the generation
service; the demo watches the job's event stream and prints held-out pass@1 before and after, where the
curves are, and the trainer's gauges read back from its /metrics endpoint.

It talks to the trainer through the generated stubs only (what any gRPC client would do).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import grpc
from google.protobuf import struct_pb2
from rich.console import Console

from services.protogen.trainer.v1 import trainer_pb2 as pb
from services.protogen.trainer.v1 import trainer_pb2_grpc

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "r1-zero-tiny.yaml"


def job_config(minutes: float | None, eval_problems: int | None) -> dict:
    """The R1-Zero recipe as the job's config, with the demo's optional shortening."""
    import yaml

    config = yaml.safe_load(RECIPE.read_text())
    config.pop("base_checkpoint", None)
    if minutes is not None:
        config["grpo"]["max_minutes"] = minutes
    if eval_problems is not None:
        config["eval"]["problems"] = eval_problems
    return config


def show_trainer(console: Console, trainer_target: str, trainer_metrics_port: int, generation_target: str,
                 verifier_target: str, teacher: Path, minutes: float | None = None,
                 eval_problems: int | None = None) -> bool:
    config = job_config(minutes, eval_problems)
    console.rule(f"R1-Zero in miniature: GRPO job on the trainer service ({config['grpo']['max_minutes']} min, "
                 f"held-out pass@1 with k={config['eval']['k']} on {config['eval']['problems']} problems)")
    struct = struct_pb2.Struct()
    struct.update(config)
    request = pb.SubmitJobRequest(
        stage=pb.STAGE_GRPO, config=struct, datasets=[pb.DatasetRef(uri="synthetic")],
        base_checkpoint=str(teacher), generation_target=generation_target, verifier_target=verifier_target,
        job_id=f"r1-zero-demo-{int(time.time())}", labels={"origin": "make-demo"})
    with grpc.insecure_channel(trainer_target) as channel:
        stub = trainer_pb2_grpc.TrainerStub(channel)
        job = stub.SubmitJob(request, timeout=30)
        console.print(f"SubmitJob -> {job.job_id}: {pb.JobState.Name(job.state)}; output {job.output_dir}")
        for event in stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id, include_history=True)):
            show_event(console, event)
        job = stub.GetJob(pb.GetJobRequest(job_id=job.job_id), timeout=30)
    if job.state != pb.JOB_STATE_SUCCEEDED:
        console.print(f"[red]job ended {pb.JobState.Name(job.state)}: {job.error}[/red]")
        return False
    summary = json.loads((Path(job.output_dir) / "summary.json").read_text())
    console.print(f"held-out pass@1 (k={summary['k']}, T=0.6, top-p 0.95, {summary['heldout_problems']} problems): "
                  f"before {summary['pass_at_1_before']:.1%} -> after {summary['pass_at_1_after']:.1%} "
                  f"({summary['gain_points']:+.1f} points) in {summary['steps']} steps, "
                  f"{summary['train_minutes']:.1f} min; weight version {job.weight_version}")
    console.print(f"curves (reward, accuracy, length, pass@1): {Path(job.output_dir) / 'curves.png'}")
    console.print(f"per-step metrics: {Path(job.output_dir) / 'metrics.jsonl'}; final checkpoint: "
                  f"{job.last_checkpoint}")
    url = f"http://127.0.0.1:{trainer_metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    gauges = [line for line in text.splitlines() if line.startswith("r1_trainer_")][:8]
    console.print(f"trainer metrics endpoint {url}:")
    for line in gauges:
        console.print(f"  {line}")
    return True


def show_event(console: Console, event: pb.JobEvent) -> None:
    kind = event.WhichOneof("kind")
    if kind == "state":
        console.print(f"state {pb.JobState.Name(event.state.state)} {event.state.message}".rstrip())
    elif kind == "log" and event.log.level >= pb.LOG_LEVEL_INFO:
        console.print(f"log: {event.log.message}")
    elif kind == "checkpoint":
        console.print(f"checkpoint step {event.checkpoint.step} (version {event.checkpoint.weight_version})"
                      f"{' final' if event.checkpoint.final else ''}: {event.checkpoint.path}")
    elif kind == "step" and (event.step.step == 1 or event.step.step % 10 == 0):
        v = event.step.values
        console.print(f"step {event.step.step:4d}  reward {v['reward_mean']:.3f}  accuracy {v['accuracy']:.3f}  "
                      f"format {v['format_rate']:.2f}  length {v['length_mean']:5.1f}  zero-var groups "
                      f"{v['zero_variance_groups']:.2f}  generation {v['generation_seconds']:.1f}s  train "
                      f"{v['train_seconds']:.1f}s  sync {v['sync_seconds'] * 1000:.0f} ms")
