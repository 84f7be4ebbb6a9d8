"""The `r1` command: help everywhere, clear errors for bad input, `serve` wired to the registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from r1.cli import SERVICE_NAMES, build_parser, main
from services.common.registry import SERVICES, entry


def r1(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "r1.cli", *args], capture_output=True, text=True, timeout=60)


def test_help_everywhere():
    assert "serve" in r1("--help").stdout
    serve_help = r1("serve", "--help").stdout
    for flag in ("--host", "--port", "--metrics-port", "--config", "--set"):
        assert flag in serve_help


def test_the_cli_and_the_registry_name_the_same_services():
    assert set(SERVICE_NAMES) == set(SERVICES)


def test_unknown_service_lists_the_valid_ones():
    result = r1("serve", "nonsense")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "verifier" in result.stderr
    with pytest.raises(Exception, match="valid: generation, verifier, trainer, exporter"):
        entry("nonsense")


def test_a_bad_config_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "verifier.yaml"
    bad.write_text("server:\n  prot: 1\n")
    assert main(["serve", "verifier", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "server.prot: unknown field" in err and "Traceback" not in err
    assert main(["serve", "verifier", "--set", "server.port=high"]) == 2
    assert "server.port: expected an integer" in capsys.readouterr().err


def test_import_r1_is_cheap():
    code = "import sys, r1, r1.cli; print(sorted(m for m in ('torch', 'grpc', 'services') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_parser_builds_without_side_effects():
    assert build_parser().parse_args(["serve", "trainer", "--port", "0"]).port == 0
