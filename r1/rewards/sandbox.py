"""A sandbox for untrusted programs (model-written code), built from layers that each have a name.

`Sandbox(config).run(argv, stdin=..., limits=..., workspace=...)` runs one program and returns a `RunResult`
(status, exit code or signal, stdout, stderr tail, wall and CPU seconds). `Sandbox.layers` names the layers
that are active on this host; `probe_layers()` does the same without raising. `run` uses no signals and no
threads, so one `Sandbox` serves any number of threads at once. A run costs 7-13 ms more than a bare
subprocess (benchmarks/sandbox_overhead.py; 2-core VM).

Layers, and the existing tool behind each (no hand-written C):
- ``process-group``: the program gets its own session and process group; the whole tree is SIGKILLed at the
  end (see `sandbox_process.py`, which also enforces the wall clock and the output cap from the parent).
- ``rlimits``: util-linux `prlimit` sets CPU seconds, address space, processes, file size, open files,
  stack and core=0 right before exec, inside the namespaces. Since Linux 5.14 RLIMIT_NPROC counts per
  (user namespace, uid), so inside a fresh user namespace it counts this run's processes only (older
  kernels count every process of uid 65534, i.e. all concurrent runs together).
- ``uid:nobody``: when the verifier runs as root, everything (bwrap included) is started as uid/gid 65534
  with no supplementary groups, so even an escape from the namespaces lands in an unprivileged user.
- ``userns``, ``mountns``, ``pidns``, ``netns``, ``no-new-privs``: bubblewrap (`bwrap`, unprivileged mode).
  New user, mount, pid, network, IPC, UTS and cgroup namespaces; no capabilities; no-new-privs; no nested
  user namespaces (``--disable-userns``, bwrap >= 0.8). The network namespace has only a loopback of its own,
  so nothing on the host (not even 127.0.0.1) is reachable. The filesystem is a read-only tmpfs root with
  read-only binds of /usr (and the /bin, /lib* links of merged-/usr systems), /etc/ld.so.cache and
  /etc/alternatives; a fresh /proc; a minimal /dev; size-capped writable tmpfses at /tmp (the working
  directory) and /dev/shm; and the run's `Workspace` at /box, read-only unless the caller asks (compilers).
  Nothing else of the host exists inside: not the project, not /root or /home, not /etc/shadow.
  Pid 1 of the namespace is a shell that waits for the program; when the program ends, or when the parent
  kills pid 1, the kernel kills and reaps everything else in the namespace before bwrap exits, so no orphan
  outlives a run and nothing is left for the host's init to reap.

Fail closed: the constructor probes the host (a real sandboxed run of `true`) and raises
`SandboxUnavailable` if a layer in `SandboxConfig.required_layers` is missing, unless `allow_degraded`.
Without bwrap (or where namespaces are forbidden, e.g. Docker's default seccomp profile) the degraded
backend keeps process-group, rlimits and uid:nobody; there a program that calls setsid escapes the group
kill, RLIMIT_NPROC is shared by every run of uid 65534, and the host filesystem is visible (files readable by
"other" are readable). "/box" at the start of an argv item is rewritten to the workspace's host path.

Deliberately not done, and what it would take:
- seccomp: a BPF deny-list (ptrace, bpf, perf_event_open, keyctl, io_uring, mount/unshare/setns, clone
  with namespace flags, clone3 answered ENOSYS so libc falls back to clone) handed to ``bwrap --seccomp FD``,
  built with libseccomp (python3-seccomp) or as raw BPF per architecture. It narrows the kernel attack
  surface; the layers above already deny capabilities, privileges and visibility.
- cgroups: memory is bounded per process by RLIMIT_AS, so one run can hold up to processes x memory (plus
  its tmpfses). A cgroup (memory.max, pids.max) would bound the total and give real OOM kills, but needs a
  delegated cgroup v2 subtree, which containers rarely grant. MEMORY_LIMIT is therefore recognised from the
  program's own report (MemoryError, std::bad_alloc), since RLIMIT_AS makes allocation fail, not kill.
- tmpfs inode counts are not capped (bwrap cannot): a program creating empty files until its CPU or wall
  limit costs kernel memory until the run ends.
- If the verifier process itself dies, its runs die with it (bwrap's --die-with-parent; `setpriv
  --pdeathsig` in degraded mode), except a run started in the few milliseconds before bwrap arms that
  signal: it then lives until its own CPU limit (a sleeping program, indefinitely). Closing that would take
  a supervisor process outside the verifier, or a delegated cgroup to kill.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

from r1.errors import FailedPrecondition, InvalidArgument
from r1.rewards.sandbox_process import KILLED_OUTPUT, KILLED_WALL, ProcessExit, ProcessSpec, execute

_log = logging.getLogger(__name__)

PROCESS_GROUP = "process-group"
RLIMITS = "rlimits"
UID_NOBODY = "uid:nobody"
USERNS = "userns"
MOUNTNS = "mountns"
PIDNS = "pidns"
NETNS = "netns"
NO_NEW_PRIVS = "no-new-privs"
LAYERS = (PROCESS_GROUP, RLIMITS, UID_NOBODY, USERNS, MOUNTNS, PIDNS, NETNS, NO_NEW_PRIVS)
DEFAULT_REQUIRED_LAYERS = (PROCESS_GROUP, RLIMITS, UID_NOBODY, MOUNTNS, PIDNS, NETNS)

NOBODY = 65534
BOX = "/box"  # where a run's workspace appears inside the sandbox
_MIB = 1 << 20
_SHM_BYTES = 4 * _MIB
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
_MEMORY_MARKERS = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"out of memory")
_BWRAP_ERROR = b"bwrap: "
# pid 1 of the namespace: a shell that waits for the program (it does not exec it: the command is not its
# last), so the program keeps ordinary signal semantics, and bwrap, which waits for pid 1, exits only after
# the kernel has killed and reaped everything else in the namespace.
_INIT = ("/bin/sh", "-c", '"$@"; exit $?', "sh")
_DEFAULT_RO = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    "/etc/ld.so.cache", "/etc/alternatives",
)  # fmt: skip


class SandboxUnavailable(FailedPrecondition):
    """A required isolation layer is missing on this host."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits.

    cpu_s: CPU seconds of each process (RLIMIT_CPU; whole seconds, rounded up).
    wall_s: wall clock of the whole run, enforced by the parent.
    memory_mb: address space of each process (RLIMIT_AS).
    processes: processes and threads of the run, its pid-1 shell included (RLIMIT_NPROC); a run can hold
        up to processes x memory_mb.
    file_size_mb: the largest file it may write (RLIMIT_FSIZE).
    open_files: RLIMIT_NOFILE.
    stack_mb: RLIMIT_STACK, also the default thread stack size, so each thread reserves this much of
        memory_mb.
    output_bytes: stdout + stderr bytes read before the run is killed as OUTPUT_LIMIT.
    tmpfs_mb: size of the writable /tmp.
    """

    cpu_s: float = 10.0
    wall_s: float = 20.0
    memory_mb: int = 512
    processes: int = 16
    file_size_mb: int = 16
    open_files: int = 64
    stack_mb: int = 64
    output_bytes: int = 1 << 20
    tmpfs_mb: int = 64

    def validate(self, where: str = "limits") -> None:
        """Raises InvalidArgument naming the first field that is not a positive number."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgument(f"{where}.{f.name}", f"must be a positive number, got {value!r}")


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox is built.

    required_layers: layers (see LAYERS) without which the constructor raises SandboxUnavailable.
    allow_degraded: run with whatever layers this host has instead of raising.
    use_bwrap: False forces the degraded backend (no namespaces).
    bwrap, prlimit: the tools, by name (looked up on PATH) or path.
    ro_paths: host paths visible read-only inside; symlinks are recreated as symlinks, missing paths skipped.
    limits: the per-run limits when `run` is given none.
    """

    required_layers: tuple[str, ...] = DEFAULT_REQUIRED_LAYERS
    allow_degraded: bool = False
    use_bwrap: bool = True
    bwrap: str = "bwrap"
    prlimit: str = "prlimit"
    ro_paths: tuple[str, ...] = _DEFAULT_RO
    limits: Limits = field(default_factory=Limits)


class RunStatus(enum.Enum):
    OK = "OK"  # exit code 0
    RUNTIME_ERROR = "RUNTIME_ERROR"  # non-zero exit or a signal
    TIMEOUT = "TIMEOUT"  # CPU or wall-clock limit
    MEMORY_LIMIT = "MEMORY_LIMIT"  # an allocation failed under RLIMIT_AS
    OUTPUT_LIMIT = "OUTPUT_LIMIT"  # too much stdout/stderr, or a file over RLIMIT_FSIZE
    SANDBOX_ERROR = "SANDBOX_ERROR"  # the sandbox itself failed to start the program


@dataclass(frozen=True)
class RunResult:
    """One run. exit_code: the program's exit code (None if it died of a signal or was killed by us);
    signal: the signal that ended it, if any; stderr: its last 64 KiB; detail: one line saying why."""

    status: RunStatus
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    wall_s: float
    cpu_s: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK


class Workspace:
    """A private host directory that runs see at /box: inputs are written here, compilers write outputs here.
    Use as a context manager (or call `close`); it is deleted with everything in it."""

    def __init__(self, owner: int | None = None):
        self.path = tempfile.mkdtemp(prefix="r1-box-")
        if owner is not None:
            os.chown(self.path, owner, owner)

    def write(self, name: str, data: bytes | str, mode: int = 0o644) -> str:
        """Creates file `name` (a plain name, no directories); returns its path inside the sandbox. Never
        follows or replaces an existing entry, which a writable run may have planted."""
        if not name or "/" in name or name in (".", ".."):
            raise InvalidArgument("name", f"must be a plain file name, got {name!r}")
        raw = data.encode() if isinstance(data, str) else data
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(os.path.join(self.path, name), flags, mode)
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return f"{BOX}/{name}"

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sandbox:
    """Runs programs under the layers this host supports; safe to share between threads. `observer`, if
    given, is called with every run's result (the verifier service counts runs by status with it)."""

    def __init__(self, config: SandboxConfig | None = None,
                 observer: Callable[[RunResult], None] | None = None):
        self.config = config or SandboxConfig()
        self._observer = observer
        self.config.limits.validate("config.limits")
        unknown = [name for name in self.config.required_layers if name not in LAYERS]
        if unknown:
            raise InvalidArgument("required_layers", f"unknown layers {unknown}; valid: {list(LAYERS)}")
        self._user = NOBODY if os.geteuid() == 0 else None
        self._prlimit = shutil.which(self.config.prlimit)
        self._orphan_guard = _orphan_guard()
        self._bwrap_flags: list[str] | None = None
        bwrap = shutil.which(self.config.bwrap) if self.config.use_bwrap else None
        if bwrap is not None:
            self._bwrap_flags = _bwrap_base_flags(bwrap)
            if not self._probe():
                self._bwrap_flags = None
        self.layers = self._active_layers()
        missing = [name for name in self.config.required_layers if name not in self.layers]
        if missing and not self.config.allow_degraded:
            raise SandboxUnavailable(
                f"sandbox layers {missing} are not available on this host (active: {list(self.layers)}); "
                "install bubblewrap and util-linux (scripts/install-sandbox-tools.sh), run as root for "
                "uid:nobody, or set SandboxConfig.allow_degraded / required_layers"
            )

    def workspace(self) -> Workspace:
        """A fresh workspace writable by the sandbox user."""
        return Workspace(owner=self._user)

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        limits: Limits | None = None,
        workspace: Workspace | None = None,
        writable: bool = False,
    ) -> RunResult:
        """Runs `argv` (paths as seen inside the sandbox) to completion or to a limit. `writable` mounts the
        workspace read-write: only for trusted tools such as compilers, since files there count only
        against RLIMIT_FSIZE each."""
        limits = limits or self.config.limits
        limits.validate()
        if not argv:
            raise InvalidArgument("argv", "must name a program")
        private = None if self._bwrap_flags is not None else Workspace(owner=self._user)
        try:
            spec = self._spec(argv, stdin, limits, workspace, writable, private)
            result = _result(execute(spec), limits, bwrap=self._bwrap_flags is not None)
        except OSError as e:
            result = RunResult(RunStatus.SANDBOX_ERROR, None, None, b"", b"", 0.0, 0.0, f"not started: {e}")
        finally:
            if private is not None:
                private.close()
        if self._observer is not None:
            self._observer(result)
        return result

    def _spec(
        self,
        argv: Sequence[str],
        stdin: bytes,
        limits: Limits,
        workspace: Workspace | None,
        writable: bool,
        private: Workspace | None,
    ) -> ProcessSpec:
        nproc = self._bwrap_flags is not None or self._user is not None  # see _prlimit_argv
        rl = _prlimit_argv(self._prlimit, limits, nproc)
        common = dict(stdin=stdin, wall_s=limits.wall_s, output_bytes=limits.output_bytes, user=self._user)
        if self._bwrap_flags is not None:
            mounts = _bwrap_mounts(self.config.ro_paths, limits, workspace, writable)
            cmd = [*self._bwrap_flags, *mounts, "--", *_INIT, *rl, *argv]
            return ProcessSpec(cmd, cwd="/", env=_ENV, pidns=True, **common)
        assert private is not None
        host = [_to_host(a, workspace) for a in argv]
        env = {**_ENV, "HOME": private.path, "TMPDIR": private.path}
        cmd = [*self._orphan_guard, *rl, *host]
        return ProcessSpec(cmd, cwd=private.path, env=env, pidns=False, **common)

    def _probe(self) -> bool:
        true = next((p for p in ("/usr/bin/true", "/bin/true") if os.path.exists(p)), "true")
        res = self.run([true], limits=Limits(cpu_s=5, wall_s=30))
        if not res.ok:
            _log.warning("bwrap is installed but cannot sandbox here (%s): %s", res.detail, res.stderr[-500:])
        return res.ok

    def _active_layers(self) -> tuple[str, ...]:
        layers = [PROCESS_GROUP]
        if self._prlimit is not None:
            layers.append(RLIMITS)
        if self._user is not None:
            layers.append(UID_NOBODY)
        if self._bwrap_flags is not None:
            layers += [USERNS, MOUNTNS, PIDNS, NETNS, NO_NEW_PRIVS]
        return tuple(layers)


def probe_layers(config: SandboxConfig | None = None) -> tuple[str, ...]:
    """The layers a sandbox with `config` would have on this host (never raises SandboxUnavailable)."""
    return Sandbox(replace(config or SandboxConfig(), required_layers=(), allow_degraded=True)).layers


def _orphan_guard() -> list[str]:
    """For the degraded backend, `setpriv --pdeathsig KILL`: the program dies with the thread that started
    it, so a verifier that crashes mid-run does not leave it running (bwrap's --die-with-parent does this,
    and the pid namespace the rest, for the full sandbox). [] where util-linux's setpriv lacks the option."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or "--pdeathsig" not in _help(setpriv):
        return []
    return [setpriv, "--pdeathsig", "KILL"]


def _help(tool: str) -> str:
    try:
        return subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _bwrap_base_flags(bwrap: str) -> list[str]:
    """bwrap's namespace and identity flags; optional ones only if this bwrap knows them."""
    help_text = _help(bwrap)
    flags = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    flags += ["--unshare-cgroup-try", "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox"]
    flags += ["--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if "--disable-userns" in help_text:
        flags.append("--disable-userns")
    if "--size" not in help_text:
        _log.warning("bwrap %s has no --size: the sandbox's tmpfses are not size-capped", bwrap)
    return flags


def _bwrap_mounts(
    ro_paths: Sequence[str], limits: Limits, workspace: Workspace | None, writable: bool
) -> list[str]:
    """The filesystem view: read-only system paths, private tmpfses, the workspace, then a read-only root."""
    args: list[str] = []
    for path in ro_paths:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(_SHM_BYTES), "--tmpfs", "/dev/shm"]
    args += ["--size", str(limits.tmpfs_mb * _MIB), "--tmpfs", "/tmp"]
    if workspace is not None:
        args += ["--bind" if writable else "--ro-bind", workspace.path, BOX]
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp"]
    return args


def _prlimit_argv(prlimit: str | None, limits: Limits, nproc: bool) -> list[str]:
    """`prlimit` flags for `limits` (soft CPU limit sends SIGXCPU, the hard one a second later SIGKILL).
    RLIMIT_NPROC only where it counts this run alone: in a user namespace or as a dedicated uid."""
    if prlimit is None:
        return []
    cpu = math.ceil(limits.cpu_s)
    args = [prlimit, f"--cpu={cpu}:{cpu + 1}", f"--as={limits.memory_mb * _MIB}"]
    args += [f"--fsize={limits.file_size_mb * _MIB}", f"--nofile={limits.open_files}"]
    args += [f"--stack={limits.stack_mb * _MIB}", "--core=0"]
    if nproc:
        args.append(f"--nproc={limits.processes}")
    return [*args, "--"]


def _to_host(arg: str, workspace: Workspace | None) -> str:
    if workspace is not None and (arg == BOX or arg.startswith(BOX + "/")):
        return workspace.path + arg[len(BOX) :]
    return arg


def _result(done: ProcessExit, limits: Limits, bwrap: bool) -> RunResult:
    """Classifies how the run ended."""
    code, sig = _split_returncode(done.returncode, bwrap)
    status, detail = _classify(done, limits, code, sig, bwrap)
    return RunResult(status, code, sig, done.stdout, done.stderr, done.wall_s, done.cpu_s, detail)


def _split_returncode(returncode: int, bwrap: bool) -> tuple[int | None, int | None]:
    """(exit code, signal). bwrap reports a child killed by signal N as exit code 128 + N."""
    if returncode < 0:
        return None, -returncode
    if bwrap and 128 < returncode <= 128 + 64:
        return None, returncode - 128
    return returncode, None


def _classify(
    done: ProcessExit, limits: Limits, code: int | None, sig: int | None, bwrap: bool
) -> tuple[RunStatus, str]:
    if done.killed_for == KILLED_WALL:
        return RunStatus.TIMEOUT, f"wall-clock limit of {limits.wall_s:g} s exceeded"
    if done.killed_for == KILLED_OUTPUT:
        return RunStatus.OUTPUT_LIMIT, f"output exceeded {limits.output_bytes} bytes"
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and done.cpu_s >= math.ceil(limits.cpu_s)):
        return RunStatus.TIMEOUT, f"CPU limit of {math.ceil(limits.cpu_s)} s exceeded"
    if sig == signal.SIGXFSZ:
        return RunStatus.OUTPUT_LIMIT, f"file size limit of {limits.file_size_mb} MiB exceeded"
    if code == 0:
        return RunStatus.OK, ""
    if any(marker in done.stderr for marker in _MEMORY_MARKERS):
        return RunStatus.MEMORY_LIMIT, f"memory limit of {limits.memory_mb} MiB exceeded"
    if bwrap and code == 1 and done.stderr.startswith(_BWRAP_ERROR):
        return RunStatus.SANDBOX_ERROR, done.stderr.decode(errors="replace").strip()[:300]
    if sig is not None:
        return RunStatus.RUNTIME_ERROR, f"killed by {_signal_name(sig)}"
    return RunStatus.RUNTIME_ERROR, f"exit code {code}"


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
