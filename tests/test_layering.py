"""The import-linter contracts hold for the tree, and each one fails when it is violated.

Liveness is shown on a copy of the packages with one violating module added per contract: the copy is
linted with the project's own contract definitions (pyproject.toml), so a contract that silently matched
nothing would fail here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())"]


def lint(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    args = [a for c in contracts for a in ("--contract", c)]
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([*LINT, *args, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_tree_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in ("r1", "services"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


VIOLATIONS = {
    "library-off-the-wire": ("r1/probe_wire.py", "import grpc\n"),
    "cli-on-top": ("r1/probe_cli.py", "import r1.cli\n"),
    "rewards-without-torch": ("r1/rewards/probe_torch.py", "import torch\n"),
    "services-independent": ("services/trainer/probe.py", "import services.generation.app\n"),
}


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_each_contract_fails_when_violated(copy, contract):
    path, source = VIOLATIONS[contract]
    probe = copy / path
    probe.write_text(source)
    try:
        result = lint(copy, contract)
    finally:
        probe.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and Path(path).stem in result.stdout


def test_services_may_import_each_others_client_module(copy):
    client = copy / "services/generation/client.py"
    probe = copy / "services/trainer/probe_client.py"
    client.write_text('"""Generation client."""\n')
    probe.write_text("import services.generation.client\n")
    try:
        result = lint(copy, "services-independent")
    finally:
        client.unlink()
        probe.unlink()
    assert result.returncode == 0, result.stdout
