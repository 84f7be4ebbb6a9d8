"""The `r1` command.

This module is the composition root: the only place in `r1` that may reach into `services`, and only
inside the subcommands that start or call services (`serve`, `demo`, `verify --target`), imported lazily
so that `import r1` and `r1 --help` stay cheap and the library itself never depends on the wire (see the
import-linter contracts in pyproject.toml). Later issues add subcommands here (generate, train, eval, ...).
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

    demo = commands.add_parser(
        "demo", help="run the stack end to end on the embedded default and print what it measured",
        description="Starts every service as a local process on 127.0.0.1 and exercises what exists.")
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


def _demo(args: argparse.Namespace) -> int:
    from services.demo import run_demo

    return run_demo()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except R1Error as e:
        print(f"r1: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
