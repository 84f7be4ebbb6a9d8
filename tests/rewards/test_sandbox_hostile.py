"""Hostile programs are contained: each gets a verdict, leaves nothing behind, and the next run works."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from r1.rewards.sandbox import Limits, RunResult, RunStatus, Sandbox

PY = "/usr/bin/python3"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROJECT_FILE = os.path.join(ROOT, "pyproject.toml")


@pytest.fixture
def marker(sandbox: Sandbox) -> Iterator[str]:
    """A unique argv marker (a number, so that `sleep 1000 <marker>` is valid); after the test, no process
    carries it and the sandbox still works normally."""
    mark = f"0.{uuid.uuid4().int % 10**15:015d}"
    yield mark
    assert processes_with(mark) == []
    res = sandbox.run([PY, "-c", "print(sum(range(10)))"])
    assert res.ok and res.stdout == b"45\n", res


def processes_with(mark: str, program: str = "") -> list[int]:
    """Live processes whose command line contains `mark` (and starts with `program`), scanning /proc; ours
    excluded."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if mark.encode() in cmdline and cmdline.startswith(program.encode()):
            found.append(int(entry))
    return found


def attack(sb: Sandbox, code: str, mark: str, **kwargs) -> RunResult:
    return sb.run([PY, "-c", code, mark], **kwargs)


def wait_for(condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_fork_bomb(sandbox, marker):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    start = time.monotonic()
    res = attack(sandbox, code, marker, limits=Limits(cpu_s=2, wall_s=3, processes=16))
    assert res.status is RunStatus.TIMEOUT
    assert time.monotonic() - start < 8


def test_memory_bomb(sandbox, marker):
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))"
    res = attack(sandbox, code, marker, limits=Limits(memory_mb=512))
    assert res.status is RunStatus.MEMORY_LIMIT


def test_infinite_loop(sandbox, marker):
    start = time.monotonic()
    res = attack(sandbox, "while True:\n    pass", marker, limits=Limits(cpu_s=1, wall_s=10))
    assert res.status is RunStatus.TIMEOUT and "CPU" in res.detail
    assert time.monotonic() - start < 8


def test_endless_file_writing(sandbox, marker):
    code = """
import errno
seen = []
for path in [f"/tmp/f{i}" for i in range(100)] + ["/f", "/usr/f", "/box/f", "/dev/f"]:
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"x" * (1 << 20))
    except OSError as e:
        seen.append(errno.errorcode[e.errno])
print(sorted(set(seen)))
"""
    free_before = shutil.disk_usage("/tmp").free
    with sandbox.workspace() as ws:
        limits = Limits(file_size_mb=16, tmpfs_mb=64, wall_s=20)
        res = attack(sandbox, code, marker, workspace=ws, limits=limits)
        assert os.listdir(ws.path) == []
    assert res.ok, res
    # files stop at RLIMIT_FSIZE, the tmpfs fills up, everything else is read-only
    assert res.stdout == b"['EFBIG', 'ENOSPC', 'EROFS']\n"
    assert abs(shutil.disk_usage("/tmp").free - free_before) < 64 << 20


def test_secrets_and_project_files_are_not_there(sandbox, marker):
    targets = ["/etc/shadow", "/etc/passwd", PROJECT_FILE, "/work", "/root", "/home",
               os.path.abspath(__file__)]
    code = """
import os, sys
for path in sys.argv[2:]:
    try:
        if os.path.isdir(path):
            print("LISTED", path, os.listdir(path))
        else:
            with open(path, "rb") as f:
                print("READ", path, len(f.read()))
    except OSError as e:
        print("DENIED", path, type(e).__name__)
"""
    assert os.path.exists(PROJECT_FILE)
    res = sandbox.run([PY, "-c", code, marker, *targets])
    assert res.ok, res
    lines = res.stdout.decode().splitlines()
    assert len(lines) == len(targets)
    assert [ln for ln in lines if not ln.startswith("DENIED")] == []
    # /proc shows the run's own pid namespace only: pid 1 (its shell) and the program
    pids = "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
    res = attack(sandbox, pids, marker)
    assert res.stdout == b"[1, 2]\n"


def test_cannot_reach_a_server_on_the_host_loopback(sandbox, marker):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        port = server.getsockname()[1]
        code = f"""
import socket
for addr in [("127.0.0.1", {port}), ("8.8.8.8", 53)]:
    try:
        socket.create_connection(addr, timeout=2).close()
        print("CONNECTED", addr)
    except OSError as e:
        print("FAILED", addr, type(e).__name__)
"""
        res = attack(sandbox, code, marker)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody ever connected
    assert res.ok, res
    assert b"CONNECTED" not in res.stdout and res.stdout.count(b"FAILED") == 2


WAIT_FOR_SLEEP = """
import os, sys, time
def sleeping():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with open(f"/proc/{pid}/cmdline") as f:
            if f.read() == "sleep\\x001000\\x00" + sys.argv[1] + "\\x00":
                return True
for _ in range(500):
    if sleeping():
        print("sleep is running", flush=True)
        break
    time.sleep(0.01)
"""


def test_background_children_do_not_survive(sandbox, marker):
    code = """
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "1000", sys.argv[1]])
    os._exit(0)
os.wait()
""" + WAIT_FOR_SLEEP
    res = attack(sandbox, code, marker)
    assert res.ok and res.stdout == b"sleep is running\n", res
    assert processes_with(marker) == []  # right after the verdict, not eventually


def test_background_children_do_not_survive_a_timeout(sandbox, marker):
    code = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    os.execv("/bin/sleep", ["sleep", "1000", sys.argv[1]])
""" + WAIT_FOR_SLEEP + "time.sleep(1000)\n"
    res = attack(sandbox, code, marker, limits=Limits(wall_s=2))
    assert res.status is RunStatus.TIMEOUT and res.stdout == b"sleep is running\n"
    assert processes_with(marker) == []


@pytest.mark.parametrize("degraded", [False, True], ids=["bwrap", "degraded"])
def test_a_run_dies_with_a_crashed_verifier(sandbox, marker, degraded, tmp_path):
    verifier_code = (
        f"import os, sys; sys.path.insert(0, {ROOT!r})\n"
        "from r1.rewards.sandbox import Limits, Sandbox, SandboxConfig\n"
        f"config = SandboxConfig(use_bwrap={not degraded}, allow_degraded=True)\n"
        "Sandbox(config).run(['/bin/sleep', '1000', os.environ['MARK']], limits=Limits(wall_s=600))"
    )
    # the marker goes in the environment, not on the verifier's command line; the killed verifier's
    # temporary directories go under tmp_path
    env = {**os.environ, "MARK": marker, "TMPDIR": str(tmp_path)}
    verifier = subprocess.Popen([sys.executable, "-c", verifier_code], env=env)
    try:  # wait for the program itself (bwrap's command line holds the marker from its first instant)
        assert wait_for(lambda: processes_with(marker, program="/bin/sleep\0"), 30), "the run never started"
    finally:
        verifier.kill()
        verifier.wait()
    assert wait_for(lambda: not processes_with(marker), 5)


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_printing_gigabytes(sandbox, marker, stream):
    code = f"import sys\nfor _ in range(4096):\n    sys.{stream}.buffer.write(b'x' * (1 << 20))"  # 4 GiB
    start = time.monotonic()
    res = attack(sandbox, code, marker, limits=Limits(output_bytes=1 << 20))
    assert res.status is RunStatus.OUTPUT_LIMIT
    assert len(res.stdout) <= 1 << 20 and len(res.stderr) <= 1 << 20
    assert time.monotonic() - start < 5
