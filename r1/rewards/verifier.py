"""The verifier: runs checks of every kind on a bounded worker pool, each within its deadline.

This is the library behind the verifier service and `r1 verify`. Choices:
- One table from check type to checker (`CHECKERS`); a checker never raises on bad model output.
  A bad *request* (InvalidArgument from a checker) becomes an INVALID_INPUT result naming the field, and
  an unexpected exception an INTERNAL result: an item is never lost, whatever it holds.
- Threads, sized to the cores: code runs in sandboxed processes and math's symbolic fallback in killable
  worker processes (`symbolic_pool.py`), so threads only wait on them; the fast paths are microseconds.
- Admission is bounded: at most `max_pending` items queued or running. `submit_batch` admits a batch whole
  or refuses it with ResourceExhausted, so a caller never gets half a batch.
- Deadlines: math passes its deadline to the symbolic pool (which kills the worker); code is bounded by its
  sandbox limits; and every item's future is answered with TIMEOUT at its deadline whatever it is doing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from r1.errors import InvalidArgument, ResourceExhausted
from r1.rewards.choice import check_choice
from r1.rewards.code import CodeRequest, judge, judge_response
from r1.rewards.format import check_format
from r1.rewards.items import ChoiceCheck, FormatCheck, Item, LanguageCheck, MathCheck
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
        self._executor = ThreadPoolExecutor(config.workers or cores, thread_name_prefix="r1-verify")
        self._slots = threading.BoundedSemaphore(config.max_pending)
        self._pending = 0
        self._lock = threading.Lock()
        self._checkers: dict[type, Callable[[Item, float], RewardResult]] = {
            MathCheck: lambda item, deadline: self.math.check(
                item.response, item.check.reference, item.check.profile, deadline=deadline),
            ChoiceCheck: lambda item, _: check_choice(item.response, item.check.reference, item.check.choices),
            CodeRequest: lambda item, _: self._code(item),
            FormatCheck: lambda item, _: check_format(item.response, item.check.think_prefilled),
            LanguageCheck: lambda item, _: check_language(
                item.response, item.check.target_language, item.check.pass_threshold),
        }

    @property
    def layers(self) -> tuple[str, ...]:
        """The sandbox's active isolation layers."""
        return self.sandbox.layers

    @property
    def pending(self) -> int:
        return self._pending

    def check(self, item: Item) -> RewardResult:
        """Run one item in the calling thread (no admission control, no deadline beyond the checkers')."""
        return self._guarded(item, self._deadline(item))

    def verify_batch(self, items: Iterable[Item]) -> Iterator[Verified]:
        """Results as they finish (each with its index); admission as `submit_batch`."""
        items = list(items)
        futures = self.submit_batch(items)
        return (future.result() for future in as_completed(futures))

    def submit_batch(self, items: list[Item]) -> list[Future]:
        """Admit all of `items` or none (ResourceExhausted); each future resolves to a `Verified`."""
        self._admit(len(items))
        return [self._submit(i, item) for i, item in enumerate(items)]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.math.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------------

    def _deadline(self, item: Item) -> float:
        deadline = self.config.deadline_seconds if item.deadline is None else item.deadline
        if not deadline > 0:
            raise InvalidArgument("deadline_seconds", f"must be positive, got {deadline}")
        return deadline

    def _admit(self, n: int) -> None:
        with self._lock:
            free = self.config.max_pending - self._pending
            if n > free:
                raise ResourceExhausted(
                    f"verifier queue is full ({self._pending} of {self.config.max_pending} items pending, "
                    f"{n} asked); retry later or send smaller batches")
            self._pending += n

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    def _submit(self, index: int, item: Item) -> Future:
        deadline = self._deadline(item)
        started = time.perf_counter()
        outer: Future = Future()
        work = self._executor.submit(self._guarded, item, deadline)

        def finish(result: RewardResult) -> None:
            if not outer.done():
                outer.set_result(Verified(index, item.id, item.kind, result, time.perf_counter() - started))

        work.add_done_callback(lambda f: (self._release(), finish(f.result())))  # slot freed first
        timer = threading.Timer(deadline, lambda: finish(
            RewardResult(0.0, Verdict.TIMEOUT, f"no verdict within the {deadline:g}s deadline")))
        timer.daemon = True
        timer.start()
        outer.add_done_callback(lambda _: timer.cancel())
        return outer

    def _guarded(self, item: Item, deadline: float) -> RewardResult:
        try:
            return self._checkers[type(item.check)](item, deadline)
        except InvalidArgument as e:
            return RewardResult(0.0, Verdict.INVALID_INPUT, str(e))
        except Exception as e:  # a checker bug must not lose the item
            log.exception("verifying item %r failed", item.id)
            return RewardResult(0.0, Verdict.INTERNAL, f"{type(e).__name__}: {e}")

    def _code(self, item: Item) -> RewardResult:
        request: CodeRequest = item.check
        if request.source:
            return judge(request, self.sandbox)
        return judge_response(item.response, request, self.sandbox)

