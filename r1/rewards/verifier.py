"""The verifier: runs checks of every kind on a bounded worker pool, each within its deadline.

This is the library behind the verifier service and `r1 verify`. Choices:
- One table from check type to checker (`CHECKERS`); a checker never raises on bad model output.
  A bad *request* (InvalidArgument from a checker) becomes an INVALID_INPUT result naming the field, and
  an unexpected exception an INTERNAL result: an item is never lost, whatever it holds.
- Threads, sized to the cores: code runs in sandboxed processes and math's symbolic fallback in killable
  worker processes (`symbolic_pool.py`), so threads only wait on them; the fast paths are microseconds.
- Admission is bounded: at most `max_pending` items queued or running. `submit_batch` admits a batch whole
  or refuses it with ResourceExhausted, so a caller never gets half a batch. A batch may cap how many of
  its items run at once (`concurrency`); the rest wait in the batch, not in the pool, and `Batch.cancel`
  drops those not yet started (a client that hung up).
- Deadlines count from the moment a worker takes the item up, not from admission, so a long queue cannot
  time out items that were never looked at (the caller's own RPC deadline bounds the wait). Math passes its
  deadline to the symbolic pool (which kills the worker) and code to the judge (which cuts every run's wall
  clock to what is left), so the worker is free again at the deadline; and every item's future is answered
  with TIMEOUT at its deadline whatever it is doing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from r1.errors import InvalidArgument, ResourceExhausted
from r1.rewards.choice import check_choice
from r1.rewards.code import CodeRequest, judge, judge_response
from r1.rewards.format import check_format
from r1.rewards.items import ChoiceCheck, FormatCheck, Invalid, Item, LanguageCheck, MathCheck
from r1.rewards.language import check_language
from r1.rewards.math import MathChecker
from r1.rewards.sandbox import Sandbox, SandboxConfig
from r1.rewards.verdict import RewardResult, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifierConfig:
    """workers: threads running checks (0 = one per core); max_pending: items admitted (queued or
    running) before new ones are refused; deadline_seconds: per-item deadline when the item sets none;
    math_workers: symbolic-fallback processes (0 = one per core); math_cache: cached math comparisons;
    sandbox: the code sandbox (see `SandboxConfig`)."""

    workers: int = 0
    max_pending: int = 4096
    deadline_seconds: float = 10.0
    math_workers: int = 0
    math_cache: int = 65_536
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)


@dataclass(frozen=True)
class Verified:
    """One item's outcome: its position in the batch, the caller's id, the result and the seconds taken."""

    index: int
    id: str
    kind: str
    result: RewardResult
    elapsed: float


class Verifier:
    """Checks `Item`s; thread-safe; close() when done (or use as a context manager)."""

    def __init__(self, config: VerifierConfig = VerifierConfig(), *, sandbox: Sandbox | None = None):
        cores = os.cpu_count() or 1
        self.config = config
        self.sandbox = sandbox or Sandbox(config.sandbox)  # raises SandboxUnavailable: fail closed
        self.math = MathChecker(pool_size=config.math_workers or cores, cache_size=config.math_cache)
        self.workers = config.workers or cores
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="r1-verify")
        self._pending = 0
        self._lock = threading.Lock()
        self._checkers: dict[type, Callable[[Item, float], RewardResult]] = {
            MathCheck: lambda item, deadline: self.math.check(
                item.response, item.check.reference, item.check.profile, deadline=deadline),
            ChoiceCheck: lambda item, _: check_choice(item.response, item.check.reference, item.check.choices),
            CodeRequest: lambda item, deadline: self._code(item, deadline),
            FormatCheck: lambda item, _: check_format(item.response, item.check.think_prefilled),
            LanguageCheck: lambda item, _: check_language(
                item.response, item.check.target_language, item.check.pass_threshold),
            Invalid: lambda item, _: RewardResult(0.0, Verdict.INVALID_INPUT, item.check.reason),
        }

    @property
    def layers(self) -> tuple[str, ...]:
        """The sandbox's active isolation layers."""
        return self.sandbox.layers

    @property
    def pending(self) -> int:
        """Items admitted and not yet answered by their worker (queued or running)."""
        return self._pending

    def check(self, item: Item) -> RewardResult:
        """Run one item in the calling thread (no admission control, no deadline beyond the checkers')."""
        return self._guarded(item, self.deadline(item))

    def verify_batch(self, items: Iterable[Item], concurrency: int | None = None) -> Iterator[Verified]:
        """Results as they finish (each with its index); admission as `submit_batch`."""
        batch = self.submit_batch(list(items), concurrency)
        return (future.result() for future in as_completed(batch.futures))

    def submit_batch(self, items: list[Item], concurrency: int | None = None) -> Batch:
        """Admit all of `items` or none (ResourceExhausted); at most `concurrency` of them run at once
        (None or more than the workers: the workers). InvalidArgument for a deadline that is not positive."""
        if concurrency is not None and concurrency < 1:
            raise InvalidArgument("max_concurrency", f"must be at least 1, got {concurrency}")
        deadlines = [self.deadline(item) for item in items]
        self._admit(len(items))
        batch = Batch(self, items, deadlines)
        batch.start(min(concurrency or self.workers, self.workers))
        return batch

    def deadline(self, item: Item) -> float:
        """The item's deadline in seconds (the verifier's default when it sets none)."""
        deadline = self.config.deadline_seconds if item.deadline is None else item.deadline
        if not deadline > 0:
            raise InvalidArgument("deadline_seconds", f"must be positive, got {deadline}")
        return deadline

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.math.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------------

    def _admit(self, n: int) -> None:
        with self._lock:
            free = self.config.max_pending - self._pending
            if n > free:
                raise ResourceExhausted(
                    f"verifier queue is full ({self._pending} of {self.config.max_pending} items pending, "
                    f"{n} asked); retry later or send smaller batches")
            self._pending += n

    def _release(self, n: int = 1) -> None:
        with self._lock:
            self._pending -= n

    def _guarded(self, item: Item, deadline: float) -> RewardResult:
        try:
            return self._checkers[type(item.check)](item, deadline)
        except InvalidArgument as e:
            return RewardResult(0.0, Verdict.INVALID_INPUT, str(e))
        except Exception as e:  # a checker bug must not lose the item
            log.exception("verifying item %r failed", item.id)
            return RewardResult(0.0, Verdict.INTERNAL, f"{type(e).__name__}: {e}")

    def _code(self, item: Item, deadline: float) -> RewardResult:
        request: CodeRequest = item.check
        if request.source:
            return judge(request, self.sandbox, deadline=deadline)
        return judge_response(item.response, request, self.sandbox, deadline=deadline)


class Batch:
    """An admitted batch: `futures[i]` resolves to item i's `Verified`. Items start in order, at most
    `concurrency` at a time; each holds its admission slot until its worker is done with it."""

    def __init__(self, verifier: Verifier, items: list[Item], deadlines: list[float]):
        self.futures: list[Future] = [Future() for _ in items]
        self._verifier = verifier
        self._waiting = deque(zip(range(len(items)), items, deadlines))
        self._lock = threading.Lock()

    def start(self, concurrency: int) -> None:
        for _ in range(concurrency):
            self._start_next()

    def cancel(self) -> int:
        """Drop the items not yet started (their futures are cancelled, their slots freed); returns how many."""
        with self._lock:
            dropped = list(self._waiting)
            self._waiting.clear()
        for index, _, _ in dropped:
            self.futures[index].cancel()
        self._verifier._release(len(dropped))
        return len(dropped)

    def _start_next(self) -> None:
        with self._lock:
            if not self._waiting:
                return
            index, item, deadline = self._waiting.popleft()
        try:
            self._verifier._executor.submit(self._run, index, item, deadline)
        except RuntimeError:  # the verifier is closing
            self.futures[index].cancel()
            self._verifier._release()

    def _run(self, index: int, item: Item, deadline: float) -> None:
        started = time.perf_counter()
        future = self.futures[index]

        def finish(result: RewardResult) -> None:
            verified = Verified(index, item.id, item.kind, result, time.perf_counter() - started)
            try:
                future.set_result(verified)
            except InvalidStateError:  # answered by the timer already
                pass

        timer = threading.Timer(deadline, finish, [RewardResult(
            0.0, Verdict.TIMEOUT, f"no verdict within the {deadline:g}s deadline")])
        timer.daemon = True
        timer.start()
        try:
            result = self._verifier._guarded(item, deadline)
        finally:
            timer.cancel()
            self._verifier._release()
        finish(result)
        self._start_next()
