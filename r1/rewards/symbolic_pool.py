"""A small pool of worker processes that run tasks under hard, killable deadlines.

Used for the symbolic fallback of the math checker (sympy can run for ever or eat all memory), usable for
any picklable module-level function.

Lifecycle:
- `SymbolicPool(size, spares=1)` starts `size + spares` processes at once and returns without waiting;
  each worker runs the optional `warmup` (e.g. importing sympy and exercising it) and then reports ready.
  Only ready workers take tasks; at most `size` serve, the others wait as warm spares.
  `wait_ready(timeout)` blocks until at least one serves (tests and services call it at start-up).
- `run(fn, *args, deadline=s)` (from any thread; each call holds one worker) returns within `deadline`
  seconds, waiting for a free worker included: no worker free in time gives NO_WORKER (the task never
  ran). Past the deadline the running task's worker is killed with SIGKILL, a warm spare takes its place
  at once, a new process starts in the background (to become the next spare) and the call returns a
  `TaskResult` with status TIMEOUT. A worker that dies (segfault, OOM kill) gives CRASHED and is replaced
  the same way; an exception inside the task gives ERROR and the worker stays.
- `close()` (idempotent; also on leaving a `with` block) stops every worker, wakes up callers waiting for
  one (they get `FailedPrecondition`) and makes later `run` calls raise it. Tasks running at that moment
  end as CRASHED. Workers are daemon processes, so they also die with the parent if `close` is forgotten.

Choices:
- Processes, not threads: a thread cannot be stopped. No signal.alarm/SIGALRM anywhere (it only works in a
  main thread); the deadline is a `poll` on the worker's pipe in the calling thread.
- 'forkserver' start method where the platform has it ('spawn' elsewhere): never fork a multi-threaded
  parent. Workers get an address-space limit (`memory_limit_bytes`, default 2 GiB) so a runaway task
  fails with MemoryError inside the worker instead of exhausting the machine.
- One duplex pipe per worker and a queue of idle workers: no shared task queue, so killing a worker can
  never lose or corrupt someone else's task.

Deliberately not done: task priorities, retries (a TIMEOUT is an answer), resizing a running pool.
"""

from __future__ import annotations

import enum
import logging
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable

from r1.errors import FailedPrecondition, InvalidArgument

__all__ = ["SymbolicPool", "TaskResult", "TaskStatus"]

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = 2 << 30
STARTUP_TIMEOUT = 120.0


class TaskStatus(enum.Enum):
    OK = "ok"
    ERROR = "error"  # the task raised; `error` names the exception
    TIMEOUT = "timeout"  # past the deadline; the worker was killed and replaced
    NO_WORKER = "no_worker"  # no worker became free before the deadline; the task never ran
    CRASHED = "crashed"  # the worker died (or the pool closed) while running the task


@dataclass(frozen=True)
class TaskResult:
    status: TaskStatus
    value: Any = None
    error: str = ""
    elapsed: float = 0.0


def _worker_main(conn: Connection, memory_limit: int | None, warmup: Callable[[], None] | None) -> None:
    """Body of a worker process: optional limits and warm-up, then answer tasks until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    if memory_limit:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):
            pass
    if warmup is not None:
        try:
            warmup()
        except Exception:  # a failed warm-up only costs speed; the task itself will report the problem
            pass
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, args = message
        try:
            reply = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - report every failure; never str() a sympy object
            reply = ("error", type(exc).__name__)
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an unpicklable result
            conn.send(("error", f"cannot send the result back: {type(exc).__name__}"))


class _Worker:
    """One process and the parent's end of its pipe. The pipe is closed exactly once, by whoever holds
    the worker at that moment (the thread running a task on it, the thread waiting for it to start, or
    `close()` for idle workers and spares); everyone else may only kill the process."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection):
        self.process = process
        self.conn = conn
        self._stopped = False
        self._stop_lock = threading.Lock()

    def stop(self, *, polite: bool) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if polite:
            try:
                self.conn.send(None)
                self.process.join(0.5)
            except (OSError, ValueError):
                pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class SymbolicPool:
    """Worker processes with killable deadlines; see the module docstring for the lifecycle."""

    def __init__(
        self,
        size: int = 2,
        *,
        warmup: Callable[[], None] | None = None,
        start_method: str | None = None,
        memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT,
        spares: int = 1,
    ):
        if size < 1:
            raise InvalidArgument("size", f"a pool needs at least one worker, got {size}")
        if spares < 0:
            raise InvalidArgument("spares", f"must be >= 0, got {spares}")
        if start_method is None:
            start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        self._ctx = multiprocessing.get_context(start_method)
        self._size = size
        self._warmup = warmup
        self._memory_limit = memory_limit_bytes
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._ready = threading.Event()
        self._start_error = ""
        self._in_service = 0  # ready workers serving tasks (idle or busy); at most `size`
        self._spares: list[_Worker] = []  # ready workers waiting to replace a killed one
        for _ in range(size + spares):
            self._spawn()

    # ----------------------------------------------------------------------------------- lifecycle

    @property
    def size(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until at least one worker has warmed up (True) or `timeout` passes (False)."""
        return self._ready.wait(timeout)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
            held = list(self._spares)
            self._spares.clear()
        while True:  # idle workers are held by nobody else: stop them here
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            if worker is not None:
                held.append(worker)
        self._idle.put(None)  # wakes one waiter, which passes it on
        for worker in held:
            worker.stop(polite=True)
        for worker in workers:  # busy or starting: kill; the thread holding it closes its pipe
            if worker not in held:
                worker.process.kill()

    def __enter__(self) -> SymbolicPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ run

    def run(self, fn: Callable[..., Any], *args: Any, deadline: float) -> TaskResult:
        """Run fn(*args) in a worker; the call returns within `deadline` seconds (waiting for a free worker
        included) plus the time to kill a worker."""
        if deadline <= 0:
            raise InvalidArgument("deadline", f"must be positive, got {deadline}")
        start = time.monotonic()
        worker = self._acquire(deadline)
        if worker is None:
            return TaskResult(TaskStatus.NO_WORKER, error=f"no worker free within {deadline:g}s", elapsed=deadline)
        remaining = max(deadline - (time.monotonic() - start), 0.001)
        try:
            worker.conn.send((fn, args))
        except (OSError, ValueError, EOFError):
            self._replace(worker)
            return TaskResult(TaskStatus.CRASHED, error="worker pipe broken", elapsed=time.monotonic() - start)
        except Exception:
            self._release(worker)  # nothing was written (pickling failed): the worker is still good
            raise
        try:
            if not worker.conn.poll(remaining):
                self._replace(worker)
                return TaskResult(TaskStatus.TIMEOUT, error=f"deadline of {deadline:g}s exceeded", elapsed=deadline)
            status, payload = worker.conn.recv()
        except (EOFError, OSError, ValueError):
            self._replace(worker)
            return TaskResult(TaskStatus.CRASHED, error="worker died", elapsed=time.monotonic() - start)
        self._release(worker)
        elapsed = time.monotonic() - start
        if status == "ok":
            return TaskResult(TaskStatus.OK, value=payload, elapsed=elapsed)
        return TaskResult(TaskStatus.ERROR, error=str(payload), elapsed=elapsed)

    # ------------------------------------------------------------------------------------ internals

    def _spawn(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self._memory_limit, self._warmup),
            name="symbolic-worker",
            daemon=True,
        )
        with self._lock:
            if self._closed:
                parent_conn.close()
                child_conn.close()
                return
            process.start()
            worker = _Worker(process, parent_conn)
            self._workers.add(worker)
        child_conn.close()
        threading.Thread(target=self._await_ready, args=(worker,), name="symbolic-pool-ready", daemon=True).start()

    def _await_ready(self, worker: _Worker) -> None:
        try:
            ok = worker.conn.poll(STARTUP_TIMEOUT) and worker.conn.recv() == ("ready", None)
        except (EOFError, OSError, ValueError):
            ok = False
        if ok:
            self._admit(worker)
            return
        worker.stop(polite=False)
        with self._lock:
            self._workers.discard(worker)
            if self._closed:
                return
            self._start_error = f"a symbolic worker failed to start (exit code {worker.process.exitcode})"
            none_left = not self._workers
        logger.error(self._start_error)
        if none_left:
            self._idle.put(None)  # wake the waiters: nothing will ever become free

    def _acquire(self, timeout: float) -> _Worker | None:
        """A free worker, None if none comes within `timeout`; raises FailedPrecondition once closed."""
        try:
            worker = self._idle.get(timeout=timeout) if not self._closed else None
        except queue.Empty:
            return None
        if worker is None:
            self._idle.put(None)
            raise FailedPrecondition(self._start_error if not self._closed else "the symbolic pool is closed")
        return worker

    def _admit(self, worker: _Worker) -> None:
        """A freshly warmed worker goes into service, or becomes a spare when the pool is full."""
        with self._lock:
            if self._closed or worker not in self._workers:
                serve = None
            elif self._in_service < self._size:
                self._in_service += 1
                serve = True
            else:
                self._spares.append(worker)
                serve = False
        if serve is None:
            worker.stop(polite=True)
        elif serve:
            self._ready.set()
            self._idle.put(worker)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            keep = not self._closed and worker in self._workers
        if keep:
            self._idle.put(worker)
        else:
            worker.stop(polite=True)

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` now, put a warm spare in its place if there is one, and start a new process in the
        background (it becomes the next spare, or serves if none was left), so the caller returns at once."""
        with self._lock:
            self._workers.discard(worker)
            self._in_service -= 1
            spare = self._spares.pop() if self._spares and not self._closed else None
            if spare is not None:
                self._in_service += 1
        worker.process.kill()
        if spare is not None:
            self._idle.put(spare)
        respawn = threading.Thread(target=self._reap_and_respawn, args=(worker,), name="symbolic-pool-respawn")
        respawn.daemon = True
        respawn.start()

    def _reap_and_respawn(self, worker: _Worker) -> None:
        worker.stop(polite=False)
        self._spawn()
