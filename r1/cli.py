"""The `r1` command.

This module is the composition root: the only place in `r1` that may reach into `services`, and only
inside the subcommands that start or call services (`serve`, `demo`, `verify --target`, `generate --target`,
`train`, `jobs`, `eval`, `lm-eval`, `up`),
imported lazily so that `import r1` and `r1 --help` stay cheap and the library itself never depends on the
wire (see the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from r1 import __version__
from r1.errors import R1Error

SERVICE_NAMES = ("generation", "verifier", "trainer", "exporter")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r1", description="r1-stack: the DeepSeek-R1 recipe as services.")
    parser.add_argument("--version", action="version", version=f"r1-stack {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run one gRPC service until SIGTERM",
        description="Run one gRPC service (health, reflection, /metrics, auth, TLS, graceful drain). "
                    "Settings come from --config YAML, then R1_* environment variables "
                    "(R1_SERVER__PORT=...), then these flags.")
    serve.add_argument("service", choices=SERVICE_NAMES)
    serve.add_argument("--config", help="YAML file with a `server:` section and the service's own section")
    serve.add_argument("--host", help="gRPC listen address (server.host)")
    serve.add_argument("--port", type=int, help="gRPC port, 0 = any free port (server.port)")
    serve.add_argument("--metrics-host", help="metrics listen address (server.metrics_host)")
    serve.add_argument("--metrics-port", type=int, help="/metrics port, 0 = any, -1 = off (server.metrics_port)")
    serve.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field, dotted (e.g. server.grace_seconds=10); repeatable")
    serve.add_argument("--port-file", help="write the bound ports as JSON to this file once listening")
    serve.set_defaults(run=_serve)

    verify = commands.add_parser(
        "verify", help="score a JSONL file of responses (math, choice, code, format, language)",
        description="Reads one JSON object per line (the format is in the README and r1/rewards/jsonl.py) and "
                    "writes each line back with reward, verdict and detail added, in input order. Runs "
                    "in-process, or through a verifier service with --target; the results are the same. "
                    "Exit status 0 when every line got a verdict, 1 when some were INVALID_INPUT or INTERNAL.")
    verify.add_argument("--input", required=True, help="JSONL file to read ('-' = stdin)")
    verify.add_argument("--output", required=True, help="JSONL file to write ('-' = stdout)")
    verify.add_argument("--target", help="host:port of a verifier service (default: verify in-process)")
    verify.add_argument("--token-file", help="file holding the service's bearer token (also: R1_TOKEN)")
    verify.add_argument("--tls-ca", help="PEM CA bundle: talk TLS to --target")
    verify.add_argument("--deadline", type=float, help="per-item deadline in seconds for lines that set none")
    verify.add_argument("--batch-size", type=int, default=512, help="lines sent or checked together")
    verify.add_argument("--workers", type=int, default=0, help="in-process checking threads (0 = one per core)")
    verify.set_defaults(run=_verify)

    generate = commands.add_parser(
        "generate", help="sample completions for a JSONL file of prompts (in-process, or through the service)",
        description="Reads one JSON object per line: \"prompt\" (text, tokenized with the model's special tokens) "
                    "or \"prompt_ids\" (token ids, used verbatim), an optional \"id\", and optional per-line "
                    "overrides of n and any sampling field (temperature, top_p, top_k, min_p, max_tokens, seed, "
                    "stop, stop_token_ids, ignore_eos, min_tokens, repetition_penalty, presence_penalty, "
                    "frequency_penalty). Writes each line back, in input order, with \"samples\" added. Runs a "
                    "torch engine in-process, or goes through a generation service with --target; greedy output "
                    "is the same either way. A line that cannot be served gets \"line\" and \"error\" instead; "
                    "exit status 1 when any line did.")
    generate.add_argument("--model", help="checkpoint directory or hub id (in-process; with --target the "
                                          "service's model is used)")
    generate.add_argument("--input", required=True, help="JSONL file to read ('-' = stdin)")
    generate.add_argument("--output", required=True, help="JSONL file to write ('-' = stdout)")
    generate.add_argument("--target", help="host:port of a generation service (default: generate in-process)")
    generate.add_argument("--token-file", help="file holding the service's bearer token (also: R1_TOKEN)")
    generate.add_argument("--tls-ca", help="PEM CA bundle: talk TLS to --target")
    generate.add_argument("--n", type=int, default=1, help="samples per prompt (default 1)")
    generate.add_argument("--temperature", type=float, help="softmax temperature, 0 = greedy (default 1.0)")
    generate.add_argument("--top-p", type=float, help="nucleus sampling in (0, 1] (default 1.0: off)")
    generate.add_argument("--top-k", type=int, help="keep the k most likely tokens (default 0: off)")
    generate.add_argument("--max-tokens", type=int, help="tokens per sample at most (default 256)")
    generate.add_argument("--seed", type=int, help="sample i of a prompt uses seed + i (default: unseeded)")
    generate.add_argument("--mtp", type=int, default=0, metavar="K",
                          help="in-process: K MTP draft tokens per step (speculative decoding; default 0: off)")
    generate.add_argument("--logprobs", action="store_true", help="add each token's log-probability")
    generate.add_argument("--concurrency", type=int, default=64, help="prompts in flight at once (default 64)")
    generate.set_defaults(run=_generate)

    pretrain = commands.add_parser(
        "pretrain", help="pretrain the tiny DeepSeek-V3 teacher from a recipe (reused while unchanged)",
        description="Trains a tokenizer and a DeepSeek-V3-architecture teacher on synthetic verifiable problems, "
                    "evaluates it on held-out problems and writes a Hugging Face checkpoint. The output is cached "
                    "by a hash of the recipe and the code ($R1_CACHE_DIR or ~/.cache/r1-stack).")
    pretrain.add_argument("--recipe", required=True, help="YAML recipe, e.g. recipes/tiny-teacher.yaml")
    pretrain.add_argument("--output", help="checkpoint directory (default: the content-addressed cache)")
    pretrain.add_argument("--force", action="store_true", help="train even if a cached teacher exists")
    pretrain.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a recipe field, dotted (e.g. train.steps=100); repeatable")
    pretrain.set_defaults(run=_pretrain)

    train = commands.add_parser(
        "train", help="run a training stage (GRPO or SFT) from a recipe, in this process",
        description="Runs GRPO (R1-Zero / reasoning RL) or SFT from a YAML recipe (r1/rl/recipe.py: GRPORecipe, "
                    "SFTRecipe) in this process. GRPO's rollouts and rewards come from in-process backends, or "
                    "from the generation and verifier services with --target-generation / --target-verifier. "
                    "Checkpoints go to OUTPUT/checkpoints; running again with the same OUTPUT resumes from the "
                    "newest. Writes OUTPUT/metrics.jsonl, OUTPUT/curves.png and OUTPUT/summary.json.")
    train.add_argument("stage", choices=["grpo", "sft"])
    train.add_argument("--recipe", required=True, help="YAML recipe, e.g. recipes/r1-zero-tiny.yaml")
    train.add_argument("--output", help="run directory (default: runs/<recipe name>)")
    train.add_argument("--target-generation", default="", help="host:port of a generation service serving the "
                                                               "base checkpoint (GRPO; default: in-process)")
    train.add_argument("--target-verifier", default="", help="host:port of a verifier service (GRPO; default: "
                                                             "in-process)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="override a recipe field, dotted (e.g. grpo.lr=2e-4 eval.k=4)")
    train.set_defaults(run=_train)

    jobs = commands.add_parser(
        "jobs", help="submit, list, watch and cancel jobs on a trainer service",
        description="Talks to a trainer service (r1 serve trainer). submit takes a recipe file as the job's "
                    "config (its fields are checked by the service, which names a bad one).")
    jobs.add_argument("--target", default="localhost:50053", help="host:port of the trainer service")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = actions.add_parser("submit", help="submit a GRPO or SFT job")
    submit.add_argument("stage", choices=["grpo", "sft"])
    submit.add_argument("--recipe", required=True, help="YAML recipe: the job's config")
    submit.add_argument("--base", default="teacher", help="base checkpoint: directory, hub id or 'teacher'")
    submit.add_argument("--dataset", action="append", default=[], help="'synthetic' (default) or a .jsonl file")
    submit.add_argument("--target-generation", default="", help="generation service for rollouts")
    submit.add_argument("--target-verifier", default="", help="verifier service for rewards")
    submit.add_argument("--job-id", help="client-chosen id (idempotent)")
    for name, text in (("get", "show one job"), ("watch", "stream a job's events until it ends"),
                       ("cancel", "cancel a job (a running one saves a final checkpoint)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id")
    actions.add_parser("list", help="list jobs, newest first")
    jobs.set_defaults(run=_jobs)

    evaluation = commands.add_parser(
        "eval", help="pass@1, cons@k and pass@k on AIME, MATH-500, GPQA-Diamond, Codeforces, ... (the R1 protocol)",
        description="Samples k responses per question from a generation service (--target) or a checkpoint "
                    "in-process (--model), grades them with the verifier (in-process, or --verifier), and writes "
                    "OUTPUT/results.json, OUTPUT/report.md, OUTPUT/pass_at_k.png and OUTPUT/lengths.png. "
                    "Samples are cached in OUTPUT/samples/, so running again with the same OUTPUT resumes. "
                    "Defaults per benchmark follow DeepSeek-R1 (r1/eval/protocol.py): T 0.6, top-p 0.95, "
                    "k from 4 (MATH-500) to 64 (AIME), 32768 tokens.")
    evaluation.add_argument("--benchmark", required=True, metavar="NAME[,NAME...]",
                            help="aime24, aime25, amc23, math500, gpqa_diamond, codeforces, code_contests, "
                                 "humaneval, mbpp, synthetic")
    evaluation.add_argument("--target", default="", help="host:port of the generation service")
    evaluation.add_argument("--model", default="", help="checkpoint directory or hub id, run in-process "
                                                        "instead of --target")
    evaluation.add_argument("--verifier", default="", help="host:port of a verifier service (default: "
                                                           "in-process)")
    evaluation.add_argument("--output", required=True, help="directory for results, report, plots and samples")
    evaluation.add_argument("--k", type=int, help="samples per question (default: per benchmark)")
    evaluation.add_argument("--temperature", type=float, default=0.6, help="default 0.6")
    evaluation.add_argument("--top-p", type=float, default=0.95, help="default 0.95")
    evaluation.add_argument("--max-tokens", type=int, help="tokens per response (default: per benchmark)")
    evaluation.add_argument("--limit", type=int, help="only the first N questions of each benchmark")
    evaluation.add_argument("--concurrency", type=int, default=8, help="questions in flight (default 8)")
    evaluation.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    evaluation.add_argument("--frame", default="raw", choices=["raw", "r1-zero", "chat"],
                            help="raw message, the R1-Zero template, or the --tokenizer's chat template")
    evaluation.add_argument("--prompt", choices=["math", "gpqa", "code", "question"],
                            help="the user message (default: per benchmark)")
    evaluation.add_argument("--tokenizer", default="", help="directory or hub id whose chat template --frame "
                                                            "chat applies")
    evaluation.add_argument("--data-dir", help="benchmark files in the shared/data layout (default: "
                                               "$R1_DATA_DIR, else ../shared/data)")
    evaluation.add_argument("--source", action="append", default=[], metavar="NAME=PATH_OR_HUB_ID",
                            help="read one benchmark from this file or hub dataset; repeatable")
    evaluation.add_argument("--fresh", action="store_true", help="discard cached samples in OUTPUT")
    evaluation.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluation.add_argument("--metrics-port", type=int, default=-1,
                            help="serve the r1_eval_* gauges on this port (0 = any, default -1 = off)")
    evaluation.add_argument("--linger", type=float, default=0.0, metavar="SECONDS",
                            help="keep serving /metrics this long after the run")
    evaluation.add_argument("--token-file", help="file holding the services' bearer token (also: R1_TOKEN)")
    evaluation.add_argument("--tls-ca", help="PEM CA bundle: talk TLS to the services")
    evaluation.set_defaults(run=_eval)

    lm_eval = commands.add_parser(
        "lm-eval", help="run an lm-eval task against the generation service (--model r1 --model_args target=...)",
        description="lm-evaluation-harness's own command line with our model registered as 'r1'; every argument "
                    "after lm-eval goes to lm-eval, e.g. r1 lm-eval --model r1 --model_args "
                    "target=localhost:50051 --tasks gsm8k.", add_help=False)
    lm_eval.set_defaults(run=_lm_eval)

    up = commands.add_parser(
        "up", help="start the four services as local processes until Ctrl-C (the non-Kubernetes path)",
        description="Starts the enabled services with `r1 serve`, waits for health SERVING, prints where each "
                    "listens and writes WORKDIR/state.json (or --state-file); Ctrl-C or SIGTERM drains them all. "
                    "The YAML config (services/up.py) picks services, ports, each one's --config and --set "
                    "overrides, and the generation model (default: the tiny teacher, pretrained on first use).")
    up.add_argument("--config", help="YAML file (see services/up.py)")
    up.add_argument("--state-file", default="", help="where to write targets, metrics ports, pids and logs")
    up.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, dotted (e.g. generation_model=DIR, exporter.enabled=false)")
    up.set_defaults(run=_up)

    demo = commands.add_parser(
        "demo", help="run the stack end to end on the embedded default and print what it measured",
        description="Starts every service as a local process on 127.0.0.1 and exercises what exists, ending with "
                    "R1-Zero in miniature (a GRPO job on the trainer service, recipes/r1-zero-tiny.yaml).")
    demo.add_argument("--rl-minutes", type=float, help="GRPO training budget (default: the recipe's 10 minutes)")
    demo.add_argument("--rl-eval-problems", type=int, help="held-out problems for pass@1 (default: the recipe's)")
    demo.set_defaults(run=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import os

    # Children of a service exec right after fork (sandboxed runs); gRPC's fork handlers would only log
    # "skipping fork() handlers" for each. Read when grpc is first imported, hence before the import below.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
    from services.common.launch import run_service

    flags = {"server.host": args.host, "server.port": args.port,
             "server.metrics_host": args.metrics_host, "server.metrics_port": args.metrics_port}
    overrides = list(args.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    return run_service(args.service, config_path=args.config, overrides=overrides, port_file=args.port_file)


def _verify(args: argparse.Namespace) -> int:
    import contextlib
    import os
    import time
    from pathlib import Path

    from r1.errors import InvalidArgument
    from r1.rewards.jsonl import verify_lines

    if args.batch_size < 1:
        raise InvalidArgument("--batch-size", f"must be at least 1, got {args.batch_size}")
    if args.input != "-" and not Path(args.input).is_file():
        raise InvalidArgument("--input", f"no such file: {args.input}")
    with contextlib.ExitStack() as stack:
        if args.target:
            from services.verifier.client import VerifierClient

            token = (Path(args.token_file).read_text().strip() if args.token_file
                     else os.environ.get("R1_TOKEN", ""))
            ca = Path(args.tls_ca).read_bytes() if args.tls_ca else None
            checker = stack.enter_context(VerifierClient(args.target, token=token, root_certificates=ca))
        else:
            from r1.rewards.verifier import Verifier, VerifierConfig

            checker = stack.enter_context(Verifier(VerifierConfig(workers=args.workers)))
        source = (sys.stdin if args.input == "-" else
                  stack.enter_context(open(args.input, encoding="utf-8", errors="replace")))
        sink = (sys.stdout if args.output == "-" else
                stack.enter_context(open(args.output, "w", encoding="utf-8")))
        started = time.perf_counter()
        verdicts = verify_lines(source, checker.verify_batch, sink.write, batch_size=args.batch_size,
                                default_deadline=args.deadline)
    total, seconds = sum(verdicts.values()), time.perf_counter() - started
    counts = ", ".join(f"{verdict} {n}" for verdict, n in verdicts.most_common())
    print(f"r1 verify: {total} lines in {seconds:.1f}s ({total / max(seconds, 1e-9):.0f}/s): {counts or 'none'}",
          file=sys.stderr)
    return 1 if verdicts["INVALID_INPUT"] or verdicts["INTERNAL"] else 0


# The per-line sampling overrides of `r1 generate` and the JSON type each must have.
def _generate(args: argparse.Namespace) -> int:
    import json
    import os
    import time
    from pathlib import Path

    from r1.engine.jsonl import generate_in_process, output_record, parse_line
    from r1.errors import InvalidArgument

    if args.input != "-" and not Path(args.input).is_file():
        raise InvalidArgument("--input", f"no such file: {args.input}")
    if args.concurrency < 1:
        raise InvalidArgument("--concurrency", f"must be at least 1, got {args.concurrency}")
    if not args.target and not args.model:
        raise InvalidArgument("--model", "is required to generate in-process (or give --target host:port)")
    if args.target and args.mtp:
        raise InvalidArgument("--mtp", "speculation is the service's setting (engine.torch.spec_tokens); drop --mtp "
                                       "with --target")
    defaults = {"n": args.n, **{k: v for k, v in [("temperature", args.temperature), ("top_p", args.top_p),
                                                  ("top_k", args.top_k), ("max_tokens", args.max_tokens),
                                                  ("seed", args.seed)] if v is not None}}
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8", errors="replace")
    with source:
        lines = [(n, text) for n, text in enumerate(source, start=1) if text.strip()]
    jobs = [parse_line(n, text, defaults) for n, text in lines]
    started = time.perf_counter()
    if args.target:
        from services.generation.client import GenerationClient

        token = Path(args.token_file).read_text().strip() if args.token_file else os.environ.get("R1_TOKEN", "")
        ca = Path(args.tls_ca).read_bytes() if args.tls_ca else None
        with GenerationClient(args.target, token=token, root_certificates=ca) as client:
            info = client.model_info()
            if args.model and args.model not in (info.model_id, info.checkpoint):
                print(f"r1 generate: note: --model {args.model} ignored; {args.target} serves {info.checkpoint}",
                      file=sys.stderr)
            results = _generate_remote(client, jobs, args)
    else:
        results = generate_in_process(jobs, args.model, args.mtp, args.concurrency, args.logprobs)
    bad = 0
    with (sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")) as sink:
        for job, result in zip(jobs, results):
            bad += isinstance(result, str)
            sink.write(json.dumps(output_record(job, result, args.logprobs), ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    samples = sum(len(r) for r in results if not isinstance(r, str))
    print(f"r1 generate: {len(jobs)} lines, {samples} samples in {seconds:.1f}s; {bad} bad lines", file=sys.stderr)
    return 1 if bad else 0


def _generate_remote(client, jobs: list[dict], args) -> list:
    from concurrent.futures import ThreadPoolExecutor

    from r1.engine.jsonl import line_error
    from r1.errors import InvalidArgument

    def one(job: dict):
        if "error" in job:
            return job["error"]
        try:
            return client.generate(job["prompt"], n=job["n"], sampling=job["sampling"], return_logprobs=args.logprobs)
        except InvalidArgument as e:
            return line_error(job, e)

    with ThreadPoolExecutor(args.concurrency) as pool:
        return list(pool.map(one, jobs))


def _pretrain(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from r1.errors import InvalidArgument
    from r1.model.pretrain import load_recipe, pretrain

    if not Path(args.recipe).is_file():
        raise InvalidArgument("--recipe", f"no such file: {args.recipe}")
    output = pretrain(load_recipe(args.recipe, args.overrides), output=args.output, force=args.force)
    metrics = json.loads((output / "metrics.json").read_text())
    by_task = ", ".join(f"{task} {accuracy:.0%}" for task, accuracy in metrics["heldout_accuracy_by_task"].items())
    print(f"teacher: {output}")
    print(f"held-out accuracy {metrics['heldout_accuracy']:.1%} ({by_task}); MTP next-next-token accuracy "
          f"{metrics['mtp_next_next_token_accuracy']:.1%}; {metrics['steps']} steps in "
          f"{metrics['train_seconds'] / 60:.1f} min")
    return 0


def _train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from r1.errors import InvalidArgument
    from r1.rl.recipe import base_checkpoint, load_grpo_recipe, load_sft_recipe, run_grpo, run_sft
    from services.trainer.jobs import generation_backend, verifier_backend

    if not Path(args.recipe).is_file():
        raise InvalidArgument("--recipe", f"no such file: {args.recipe}")
    output = Path(args.output or Path("runs") / Path(args.recipe).stem)
    if args.stage == "sft":
        recipe = load_sft_recipe(args.recipe, args.overrides)
        history = run_sft(recipe, output, base_checkpoint(recipe.base_checkpoint, recipe.teacher_recipe))
        print(json.dumps(history["summary"], indent=2))
        print(f"model: {output / 'model'}")
        return 0
    recipe = load_grpo_recipe(args.recipe, args.overrides)
    base = base_checkpoint(recipe.base_checkpoint, recipe.teacher_recipe)
    generation, close = generation_backend(args.target_generation, base, recipe.engine_threads)
    verifier = verifier_backend(args.target_verifier)

    def show(m) -> None:
        print(f"step {m.step:4d}  reward {m.reward_mean:.3f}  accuracy {m.accuracy:.3f}  length {m.length_mean:5.1f}"
              f"  zero-var {m.zero_variance_groups:.2f}  {m.values()['step_seconds']:.1f}s", flush=True)

    try:
        summary = run_grpo(recipe, output, generation, verifier, base, on_step=show)["summary"]
    finally:
        verifier.close()
        close()
    print(f"held-out pass@1 (k={summary['k']}, {summary['heldout_problems']} problems): "
          f"{summary['pass_at_1_before']:.1%} -> {summary['pass_at_1_after']:.1%} "
          f"({summary['gain_points']:+.1f} points) after {summary['steps']} steps in {summary['train_minutes']:.1f} min")
    print(f"curves: {output / 'curves.png'}; metrics: {output / 'metrics.jsonl'}; checkpoints: {output / 'checkpoints'}")
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from r1.config import read_yaml
    from r1.errors import InvalidArgument
    from services.protogen.trainer.v1 import trainer_pb2 as pb
    from services.trainer.client import TrainerClient, as_json

    with TrainerClient(args.target) as client:
        if args.action == "submit":
            if not Path(args.recipe).is_file():
                raise InvalidArgument("--recipe", f"no such file: {args.recipe}")
            config = read_yaml(args.recipe)
            config.pop("base_checkpoint", None)
            job = client.submit(args.stage, config, args.dataset or ["synthetic"], args.base,
                                generation_target=args.target_generation, verifier_target=args.target_verifier,
                                job_id=args.job_id)
            print(f"{job.job_id} {pb.JobState.Name(job.state)} {job.output_dir}")
        elif args.action == "list":
            for job in client.list():
                print(f"{job.job_id:32s} {pb.Stage.Name(job.stage):10s} {pb.JobState.Name(job.state):22s} "
                      f"step {job.step}/{job.total_steps}")
        elif args.action == "get":
            print(as_json(client.get(args.job_id)))
        elif args.action == "cancel":
            print(pb.JobState.Name(client.cancel(args.job_id).state))
        else:
            for event in client.watch(args.job_id):
                print(as_json(event, indent=None), flush=True)
    return 0


def _eval(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from r1.errors import InvalidArgument
    from r1.eval.protocol import EvalSettings, parse_benchmarks
    from services.evaluator.run import EvalRun, run_eval

    if args.target and args.model:
        raise InvalidArgument("--model", "give --target (a generation service) or --model (in-process), not both")
    sources = {}
    for item in args.source:
        name, _, path = item.partition("=")
        if not path:
            raise InvalidArgument("--source", f"expected NAME=PATH_OR_HUB_ID, got {item!r}")
        sources[name.strip()] = path.strip()
    benchmarks = parse_benchmarks(args.benchmark)
    unknown = sorted(set(sources) - set(benchmarks))
    if unknown:
        raise InvalidArgument("--source", f"names {', '.join(unknown)}, which --benchmark does not include")
    settings = EvalSettings(k=args.k, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            limit=args.limit, concurrency=args.concurrency, seed=args.seed, frame=args.frame,
                            prompt=args.prompt, data_dir=args.data_dir)
    settings.check()
    token = Path(args.token_file).read_text().strip() if args.token_file else os.environ.get("R1_TOKEN", "")
    run = EvalRun(benchmarks=benchmarks, output=args.output, settings=settings, target=args.target,
                  model=args.model, verifier_target=args.verifier, token=token,
                  root_certificates=Path(args.tls_ca).read_bytes() if args.tls_ca else None,
                  tokenizer=args.tokenizer, sources=sources, fresh=args.fresh, progress=not args.no_progress,
                  metrics_port=args.metrics_port, linger_seconds=args.linger)
    results = run_eval(run)
    for name, section in results["benchmarks"].items():
        cons = section["cons@k"]
        rating = (section.get("codeforces") or {}).get("rating")
        print(f"{name:14s} pass@1 {100 * section['pass@1']['value']:5.1f}% "
              f"(± {100 * section['pass@1']['stderr']:.1f}) over {section['questions']} questions x "
              f"{section['settings']['k']}" + (f", cons@k {100 * cons['value']:.1f}%" if cons else "")
              + (f", rating {rating:.0f}" if rating is not None else ""))
    print(f"report: {Path(args.output) / 'report.md'}; results: {Path(args.output) / 'results.json'}")
    return 0


def _lm_eval(args: argparse.Namespace) -> int:
    from services.evaluator.lm_eval_model import main as lm_eval_main

    return lm_eval_main(args.lm_eval_args)


def _up(args: argparse.Namespace) -> int:
    from services.up import load_up_config, run_up

    config = load_up_config(args.config, args.overrides)

    def ready(info: dict) -> None:
        for name, where in info.items():
            print(f"{name:10s} SERVING  gRPC {where['target']:21s} metrics http://{where['metrics']}/metrics  "
                  f"log {where['log']}", flush=True)
        print("Ctrl-C (or SIGTERM) drains every service.", flush=True)

    codes = run_up(config, args.state_file, on_ready=ready)
    print(f"drained: {codes}")
    return 0 if all(code == 0 for code in codes.values()) else 1


def _demo(args: argparse.Namespace) -> int:
    from services.demo import run_demo

    return run_demo(args.rl_minutes, args.rl_eval_problems)


def _command_position(argv: list[str]) -> int | None:
    """Where the subcommand's name is: the first word that is neither a global option nor its value."""
    i = 0
    while i < len(argv):
        if argv[i] == "--log-level":
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    at = _command_position(argv)
    if at is not None and argv[at] == "lm-eval":  # everything after it belongs to lm-eval's own parser
        args = parser.parse_args(argv[:at + 1])
        args.lm_eval_args, extra = argv[at + 1:], []
    else:
        args, extra = parser.parse_known_args(argv)
    if extra:  # `r1 train` takes key=value overrides anywhere after the stage; nothing else takes extras
        if args.command != "train" or any("=" not in item or item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except R1Error as e:
        print(f"r1: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
