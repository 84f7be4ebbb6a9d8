"""Start one service in this process: load its typed config, build it, serve until SIGTERM.

Config precedence: the service's default ports (registry) < YAML file < ``R1_*`` environment < flags.
"""

from __future__ import annotations

import asyncio
import logging

from r1.config import load_config
from services.common.registry import entry, service_module
from services.common.server import serve


def run_service(name: str, *, config_path: str | None = None, overrides: list[str] | None = None,
                port_file: str | None = None) -> int:
    """Run service `name` until SIGTERM/SIGINT; returns the exit code (0 after a clean drain)."""
    spec = entry(name)
    module = service_module(name)
    defaults = [f"server.port={spec.port}", f"server.metrics_port={spec.metrics_port}"]
    config = load_config(module.Config, config_path, base_overrides=defaults, overrides=overrides or [])
    logging.getLogger(__name__).info("starting %s with %s", name, config)
    return asyncio.run(serve(module.build(config), config.server, port_file=port_file))
