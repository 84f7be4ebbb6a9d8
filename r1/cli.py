"""The `r1` command.

This module is the composition root: the only place in `r1` that may reach into `services`, and only
inside the subcommands that start or call services (`serve`, `demo`), imported lazily so that `import r1`
and `r1 --help` stay cheap and the library itself never depends on the wire (see the import-linter
contracts in pyproject.toml). Later issues add subcommands here (verify, generate, train, eval, ...).
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

    demo = commands.add_parser(
        "demo", help="run the stack end to end on the embedded default and print what it measured",
        description="Starts every service as a local process on 127.0.0.1 and exercises what exists.")
    demo.set_defaults(run=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from services.common.launch import run_service

    flags = {"server.host": args.host, "server.port": args.port,
             "server.metrics_host": args.metrics_host, "server.metrics_port": args.metrics_port}
    overrides = list(args.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    return run_service(args.service, config_path=args.config, overrides=overrides, port_file=args.port_file)


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
