"""The sandbox: layers reported and required, limits as statuses, workspaces, threads, degraded mode."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from r1.errors import InvalidArgument
from r1.rewards.sandbox import (
    LAYERS,
    Limits,
    RunStatus,
    Sandbox,
    SandboxConfig,
    SandboxUnavailable,
    probe_layers,
)

PY = "/usr/bin/python3"


def py(sb: Sandbox, code: str, **kwargs):
    return sb.run([PY, "-c", code], **kwargs)


def test_probe_reports_known_layers_and_always_a_process_group():
    layers = probe_layers()
    assert "process-group" in layers and set(layers) <= set(LAYERS)


def test_fails_closed_when_a_required_layer_is_missing():
    with pytest.raises(SandboxUnavailable, match="mountns"):
        Sandbox(SandboxConfig(use_bwrap=False))


def test_unknown_required_layer_is_an_invalid_argument():
    with pytest.raises(InvalidArgument) as e:
        Sandbox(SandboxConfig(required_layers=("seccomp-ish",)))
    assert e.value.field == "required_layers"


def test_degraded_backend_runs_and_says_what_it_lacks():
    sb = Sandbox(SandboxConfig(use_bwrap=False, allow_degraded=True))
    assert "mountns" not in sb.layers and "netns" not in sb.layers
    assert "process-group" in sb.layers
    with sb.workspace() as ws:
        ws.write("echo.py", "print(input()[::-1])")
        res = sb.run([PY, "/box/echo.py"], stdin=b"abc\n", workspace=ws)  # /box is rewritten to the host path
    assert res.ok and res.stdout == b"cba\n"
    spin = sb.run([PY, "-c", "while True: pass"], limits=Limits(cpu_s=1, wall_s=5))
    assert spin.status is RunStatus.TIMEOUT


@pytest.mark.parametrize("name", ["cpu_s", "wall_s", "memory_mb", "processes", "output_bytes"])
def test_limits_must_be_positive(name):
    with pytest.raises(InvalidArgument) as e:
        Limits(**{name: 0}).validate()
    assert e.value.field == f"limits.{name}"


def test_all_layers_active_as_root_with_bubblewrap(sandbox):
    if os.geteuid() != 0:
        pytest.skip("uid:nobody needs root")
    assert {"process-group", "rlimits", "uid:nobody", "mountns", "pidns", "netns"} <= set(sandbox.layers)


def test_runs_as_nobody_in_a_private_view_with_stdin(sandbox):
    code = (
        "import os, socket\n"
        "print(os.getuid(), os.getcwd(), socket.gethostname(), sorted(os.listdir('/')))\n"
        "print(input())"
    )
    res = py(sandbox, code, stdin=b"hello\n")
    assert res.ok, res
    uid, cwd, host, root = res.stdout.decode().splitlines()[0].split(" ", 3)
    assert (uid, cwd, host) == ("65534", "/tmp", "sandbox")
    assert "work" not in root and "root" not in root and "home" not in root
    assert res.stdout.decode().splitlines()[1] == "hello"


def test_exit_code_and_signal_are_runtime_errors(sandbox):
    res = py(sandbox, "import sys; sys.exit(3)")
    assert (res.status, res.exit_code, res.signal) == (RunStatus.RUNTIME_ERROR, 3, None)
    res = py(sandbox, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert (res.status, res.exit_code, res.signal) == (RunStatus.RUNTIME_ERROR, None, signal.SIGSEGV)
    assert "SIGSEGV" in res.detail


def test_cpu_limit_is_a_timeout(sandbox):
    res = py(sandbox, "while True: pass", limits=Limits(cpu_s=1, wall_s=10))
    assert res.status is RunStatus.TIMEOUT and "CPU" in res.detail
    assert res.wall_s < 5 and res.cpu_s >= 0.9  # the tree's CPU time is accounted


def test_wall_limit_is_a_timeout(sandbox):
    start = time.monotonic()
    res = py(sandbox, "import time; time.sleep(60)", limits=Limits(cpu_s=5, wall_s=1))
    assert res.status is RunStatus.TIMEOUT and "wall" in res.detail
    assert time.monotonic() - start < 4


def test_output_cap_is_an_output_limit(sandbox):
    res = py(sandbox, "print('x' * 5000)", limits=Limits(output_bytes=1000))
    assert res.status is RunStatus.OUTPUT_LIMIT and len(res.stdout) <= 1000


def test_failed_allocation_is_a_memory_limit(sandbox):
    res = py(sandbox, "x = bytearray(1 << 30)", limits=Limits(memory_mb=256))
    assert res.status is RunStatus.MEMORY_LIMIT


def test_file_size_limit_is_an_output_limit(sandbox):
    res = sandbox.run(["/bin/sh", "-c", "head -c 3000000 /dev/zero > /tmp/f"], limits=Limits(file_size_mb=1))
    assert res.status is RunStatus.OUTPUT_LIMIT and res.signal == signal.SIGXFSZ


def test_workspace_is_read_only_unless_writable(sandbox):
    with sandbox.workspace() as ws:
        ws.write("in.txt", "data")
        code = "print(open('/box/in.txt').read()); open('/box/out.txt', 'w').write('x')"
        res = py(sandbox, code, workspace=ws)
        assert res.stdout == b"data\n" and b"Read-only file system" in res.stderr
        assert py(sandbox, code, workspace=ws, writable=True).ok
        assert open(os.path.join(ws.path, "out.txt")).read() == "x"
    assert not os.path.exists(ws.path)


def test_workspace_write_never_follows_a_planted_link(sandbox):
    with sandbox.workspace() as ws:
        plant = "import os; os.symlink('/etc/passwd', '/box/main.py')"
        assert py(sandbox, plant, workspace=ws, writable=True).ok
        with pytest.raises(FileExistsError):
            ws.write("main.py", "print(1)")
        with pytest.raises(InvalidArgument):
            ws.write("../escape.py", "print(1)")


def test_tmp_is_private_to_each_run(sandbox):
    assert py(sandbox, "open('/tmp/left', 'w').write('x')").ok
    res = py(sandbox, "import os; print(os.listdir('/tmp'))")
    assert res.stdout == b"[]\n"


def test_runs_from_many_threads_at_once(sandbox):
    def one(i: int):
        if i == 0:
            return py(sandbox, "import time; time.sleep(30)", limits=Limits(wall_s=1))
        return py(sandbox, "print(int(input()) * 2)", stdin=f"{i}\n".encode())

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(12)))
    assert results[0].status is RunStatus.TIMEOUT
    assert [r.stdout for r in results[1:]] == [f"{2 * i}\n".encode() for i in range(1, 12)]


def test_process_limit_counts_each_run_alone(sandbox):
    code = (
        "import os, time\nn = 0\ntry:\n    for _ in range(50):\n        if os.fork() == 0:\n"
        "            time.sleep(2); os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)\n"
        "time.sleep(1)"  # both runs hold their processes at the same time
    )
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: py(sandbox, code, limits=Limits(processes=8)), range(2)))
    # 8 tasks per run: pid 1 (the shell), the program and 6 children, in each run despite the other one
    assert [r.stdout for r in results] == [b"6\n", b"6\n"]
