"""Start one process tree, watch it against a wall clock and an output cap, kill all of it, reap it.

This is the mechanism under `sandbox.py`; it knows nothing of namespaces or limits beyond the two the parent
enforces itself (wall clock and output bytes). Choices:

- No signals and no helper threads: one `poll` loop in the calling thread multiplexes stdout, stderr and a
  pidfd (readable when the process exits), with the wall-clock deadline as its timeout. Any number of
  threads may run `execute` concurrently.
- stdin is written before the program starts, so a program that never reads its input cannot block the
  parent and the loop has nothing to write: a pre-filled pipe when the input fits in the pipe buffer (read
  once, like a terminal's: a program cannot seek back to data its harness already consumed), else a memfd.
- The process is started with `start_new_session=True` (its own session and process group) and, when asked,
  as another uid (`subprocess`'s `user=`/`group=`/`extra_groups=`, applied in C between fork and exec;
  `preexec_fn` is avoided because it is unsafe in threaded programs).
- Killing: with a pid namespace (`pidns=True`, the child is bwrap run with --as-pid-1) we SIGKILL bwrap's
  child, which is pid 1 of the namespace; the kernel then kills and reaps every process in the namespace
  before pid 1 counts as exited, and bwrap waits for pid 1, so once bwrap is reaped nothing the program
  started is alive, and nothing is left for another process to reap. The group SIGKILL is the fallback
  (and the only means without a pid namespace, where a program that calls setsid escapes it).
- Reaping uses `os.wait4`, whose rusage covers every descendant that was waited for, so CPU time includes
  the whole tree.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

_READ_CHUNK = 1 << 16
_STDERR_KEEP = 1 << 16  # bytes of stderr kept (the tail: the last lines say what went wrong)
_DRAIN_S = 0.5  # after the main process exits, how long to wait for the pipes to reach EOF
_KILL_GRACE_S = 2.0  # how long a killed namespace may take to tear down before the group kill
_POLL_S = 0.01  # exit polling period where pidfds are unavailable
_PIPE_MAX = 1 << 16  # stdin up to this size goes through a pipe (Linux's default pipe buffer is 64 KiB)

KILLED_WALL = "wall"
KILLED_OUTPUT = "output"


@dataclass(frozen=True)
class ProcessSpec:
    """What to start. `user`: uid (and gid) to run as, None to keep ours. `pidns`: the child is a
    pid-namespace launcher (bwrap) whose own child is the namespace's init."""

    argv: Sequence[str]
    cwd: str
    env: Mapping[str, str]
    stdin: bytes
    wall_s: float
    output_bytes: int
    user: int | None = None
    pidns: bool = False


@dataclass(frozen=True)
class ProcessExit:
    """How it ended. `returncode` as `subprocess` reports it (negative: killed by that signal).
    `killed_for`: "" when it ended by itself, else KILLED_WALL or KILLED_OUTPUT."""

    returncode: int
    stdout: bytes
    stderr: bytes
    wall_s: float
    cpu_s: float
    killed_for: str


def execute(spec: ProcessSpec) -> ProcessExit:
    """Run `spec` to completion or to a limit; the whole tree is dead and reaped on return.
    Raises OSError if the process cannot be started at all."""
    start = time.monotonic()
    with _stdin_fd(spec.stdin) as stdin:
        proc = subprocess.Popen(
            list(spec.argv),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=spec.cwd,
            env=dict(spec.env),
            start_new_session=True,
            close_fds=True,
            **_user_kwargs(spec.user),
        )
    exit_fd = _pidfd(proc.pid)
    stdout, stderr, killed_for = b"", b"", ""
    try:
        stdout, stderr, killed_for = _watch(proc, spec, start + spec.wall_s, exit_fd)
    finally:
        if not _has_exited(proc.pid, exit_fd, 0.0):
            _kill_tree(proc.pid, spec.pidns, exit_fd)
        returncode, cpu_s = _reap(proc)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
        if exit_fd is not None:
            os.close(exit_fd)
    return ProcessExit(returncode, stdout, stderr, time.monotonic() - start, cpu_s, killed_for)


def _watch(
    proc: subprocess.Popen, spec: ProcessSpec, deadline: float, exit_fd: int | None
) -> tuple[bytes, bytes, str]:
    """Read stdout/stderr until both reach EOF and the process has exited; kill on a limit."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    bufs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    total = 0
    exited = False
    with selectors.PollSelector() as sel:
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        if exit_fd is not None:
            sel.register(exit_fd, selectors.EVENT_READ)
        while bufs or not exited:
            now = time.monotonic()
            if now >= deadline:
                if exited:  # drained long enough after exit: stragglers hold the pipes
                    break
                _kill_tree(proc.pid, spec.pidns, exit_fd)
                return bytes(out), bytes(err), KILLED_WALL
            timeout = deadline - now if exit_fd is not None else min(deadline - now, _POLL_S)
            for key, _ in sel.select(timeout):
                if key.fd == exit_fd:
                    sel.unregister(exit_fd)
                    exited = True
                    deadline = _on_exit(proc.pid, spec.pidns, deadline)
                    continue
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    del bufs[key.fd]
                    continue
                total += len(chunk)
                if total > spec.output_bytes:
                    _kill_tree(proc.pid, spec.pidns, exit_fd)
                    return bytes(out), bytes(err[-_STDERR_KEEP:]), KILLED_OUTPUT
                buf = bufs[key.fd]
                buf += chunk
                if buf is err and len(err) > 2 * _STDERR_KEEP:
                    del err[:-_STDERR_KEEP]
            if exit_fd is None and not exited and _has_exited(proc.pid, None, 0.0):
                exited = True
                deadline = _on_exit(proc.pid, spec.pidns, deadline)
    return bytes(out), bytes(err[-_STDERR_KEEP:]), ""


def _on_exit(pid: int, pidns: bool, deadline: float) -> float:
    """The main process has exited (not yet reaped). Without a pid namespace its leftover children would
    outlive it: kill the group now. Returns the deadline for draining the pipes."""
    if not pidns:
        _killpg(pid)
    return min(deadline, time.monotonic() + _DRAIN_S)


def _kill_tree(pid: int, pidns: bool, exit_fd: int | None) -> None:
    """SIGKILL everything `pid` started. The caller has not reaped `pid`, so its pid/pgid are still ours."""
    if pidns:
        inits = _children(pid)
        for child in inits:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if inits and _has_exited(pid, exit_fd, _KILL_GRACE_S):
            return
    _killpg(pid)


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (needs CONFIG_PROC_CHILDREN, on in mainstream kernels; [] otherwise)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _has_exited(pid: int, exit_fd: int | None, timeout: float) -> bool:
    """True once `pid` has exited, waiting up to `timeout` s; never reaps it."""
    end = time.monotonic() + timeout
    while True:
        if exit_fd is not None:
            with selectors.PollSelector() as sel:
                sel.register(exit_fd, selectors.EVENT_READ)
                return bool(sel.select(max(0.0, end - time.monotonic())))
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(_POLL_S)


def _reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for `proc` (already exited or killed); returns (returncode, CPU seconds of the whole tree)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # Python built without it, or a kernel older than 5.3
        return None


@contextmanager
def _stdin_fd(data: bytes) -> Iterator[int]:
    """A readable fd holding exactly `data`: /dev/null, a pre-filled pipe, or a memfd for large inputs."""
    if not data:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    else:
        fd = _filled_pipe(data)
        if fd is None:
            fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.lseek(fd, 0, os.SEEK_SET)
    try:
        yield fd
    finally:
        os.close(fd)


def _filled_pipe(data: bytes) -> int | None:
    """The read end of a pipe already holding all of `data` (write end closed), or None if it does not fit."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        os.set_blocking(write_end, False)
        written = os.write(write_end, data) if len(data) <= _PIPE_MAX else 0
    except BlockingIOError:
        written = 0
    finally:
        os.close(write_end)
    if written == len(data):
        return read_end
    os.close(read_end)
    return None


def _user_kwargs(user: int | None) -> dict:
    if user is None:
        return {}
    return {"user": user, "group": user, "extra_groups": []}
