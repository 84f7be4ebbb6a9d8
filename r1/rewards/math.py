"""The math accuracy reward: is the answer in a model response equivalent to the gold answer?

DeepSeek-R1's rule-based accuracy reward (boxed answer checked against the reference), with Math-Verify's
semantics (huggingface/Math-Verify): the gold answer is read first and its form decides how the prediction
is read (a set gold compares as a set, a number gold numerically, an assignment `k = 1` by its value).

Pipeline, one `MathChecker.check` call:
1. extraction (`math_extract`): the gold with `REFERENCE_POLICY` (boxed, math environment or the whole
   text), the response with the profile's policy: STRICT for RL rewards (`<answer>` tags, `\\boxed{}`,
   "final answer" lines only), LENIENT for evaluation (also the last math environment or number);
2. cache lookup on (gold answer, predicted answer, options), a bounded LRU owned by the checker;
3. fast path (`math_fastpath`): normalisation, exact / numeric / structural comparison, microseconds,
   no sympy; it settles most answers or declines;
4. symbolic fallback (`math_symbolic`, Math-Verify's verify) in a `SymbolicPool` worker process under a
   hard deadline.

Verdicts: CORRECT (reward 1), WRONG, NO_ANSWER (nothing extractable), INVALID_INPUT (empty or unreadable
gold), TIMEOUT (the symbolic deadline passed, or no worker was free before it), INTERNAL (a worker
crashed); every one but CORRECT has reward 0. Bad model output never raises; bad arguments (a non-string,
a non-positive deadline) raise `InvalidArgument`.

Choices:
- Inputs with lone surrogates (invalid Unicode) are repaired (U+FFFD) before anything else.
- A predicted answer longer than `max_answer_chars` (10,000) is WRONG without parsing: no reference in a
  math benchmark is that long, and parsing it would only burn the deadline.
- The cache key is the pair of *extracted* answers (and the options), not the raw response, so equal
  answers inside different responses share an entry. A TIMEOUT is cached with its deadline and reused
  only for requests with a deadline no longer than that one (so a group of identical pathological answers
  costs one killed worker, not one each); INTERNAL results are never cached.
- A checker creates its worker pool lazily, on the first answer the fast path cannot settle, and closes it
  in `close()` unless the pool was passed in.

Deliberately not done: partial credit, multiple-choice letters (a separate reward), unit conversion.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from dataclasses import dataclass

from r1.errors import FailedPrecondition, InvalidArgument
from r1.rewards.math_extract import (
    LENIENT_POLICY,
    REFERENCE_POLICY,
    STRICT_POLICY,
    ExtractionPolicy,
    extract_answer,
)
from r1.rewards.math_fastpath import fast_compare
from r1.rewards.math_symbolic import symbolic_equal, warm_up
from r1.rewards.symbolic_pool import SymbolicPool, TaskStatus
from r1.rewards.verdict import RewardResult, Verdict

__all__ = ["Profile", "CompareOptions", "Comparison", "MathChecker", "check_math"]

DEFAULT_DEADLINE = 5.0
MAX_ANSWER_CHARS = 10_000


class Profile(enum.Enum):
    """Where an answer may be taken from: STRICT for RL rewards, LENIENT for evaluation."""

    STRICT = "strict"
    LENIENT = "lenient"

    @property
    def policy(self) -> ExtractionPolicy:
        return STRICT_POLICY if self is Profile.STRICT else LENIENT_POLICY


@dataclass(frozen=True)
class CompareOptions:
    """Math-Verify's comparison knobs.

    float_rounding: decimal places both sides are rounded to when either is a decimal literal.
    strict: variables must match by name (x+1 != y+1) and sets do not equal tuples.
    allow_set_relation_comp: a relation prediction (1 <= x <= 2) may equal a set gold ([1, 2]).
    """

    float_rounding: int = 6
    strict: bool = True
    allow_set_relation_comp: bool = False


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing two extracted answers."""

    verdict: Verdict
    detail: str


class _LruCache:
    """A bounded, thread-safe LRU map: (gold, pred, options) -> (comparison, deadline it timed out at)."""

    def __init__(self, maxsize: int):
        self._maxsize = maxsize
        self._data: OrderedDict[tuple, tuple[Comparison, float | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[Comparison, float | None] | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple, value: tuple[Comparison, float | None]) -> None:
        if self._maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def _repair_unicode(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates: each becomes U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _require_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {type(value).__name__}")
    return _repair_unicode(value)


def _policy_of(profile: Profile | ExtractionPolicy) -> ExtractionPolicy:
    if isinstance(profile, Profile):
        return profile.policy
    if isinstance(profile, ExtractionPolicy):
        return profile
    raise InvalidArgument("profile", f"must be one of {[p.name for p in Profile]} or an ExtractionPolicy")


_REWARD = {Verdict.CORRECT: 1.0}


def _result(outcome: Comparison, extracted: str) -> RewardResult:
    return RewardResult(_REWARD.get(outcome.verdict, 0.0), outcome.verdict, outcome.detail, extracted)


class MathChecker:
    """Checks math answers; owns the result cache and (unless given one) the symbolic worker pool.

    Thread-safe: one checker can serve many threads; symbolic work runs in at most `pool_size` processes,
    plus `spare_workers` warm ones kept ready to replace a worker killed at its deadline. Use it as a
    context manager or call `close()`.
    """

    def __init__(
        self,
        *,
        pool: SymbolicPool | None = None,
        pool_size: int = 2,
        spare_workers: int = 1,
        cache_size: int = 65_536,
        options: CompareOptions = CompareOptions(),
        max_answer_chars: int = MAX_ANSWER_CHARS,
    ):
        self._pool = pool
        self._owns_pool = pool is None
        self._pool_size = pool_size
        self._spare_workers = spare_workers
        self._pool_lock = threading.Lock()
        self._cache = _LruCache(cache_size)
        self._options = options
        self._max_answer_chars = max_answer_chars
        self._closed = False

    @property
    def options(self) -> CompareOptions:
        return self._options

    @property
    def cached(self) -> int:
        """How many comparisons the cache holds."""
        return len(self._cache)

    def pool(self) -> SymbolicPool:
        """The worker pool, started on first use."""
        with self._pool_lock:
            if self._closed:
                raise FailedPrecondition("this MathChecker is closed")
            if self._pool is None:
                self._pool = SymbolicPool(self._pool_size, warmup=warm_up, spares=self._spare_workers)
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and self._owns_pool:
            pool.close()

    def __enter__(self) -> MathChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ check

    def check(
        self,
        response: str,
        gold: str,
        profile: Profile | ExtractionPolicy = Profile.STRICT,
        *,
        deadline: float = DEFAULT_DEADLINE,
        gold_policy: ExtractionPolicy = REFERENCE_POLICY,
    ) -> RewardResult:
        """Grade `response` against `gold`. `deadline` (seconds) bounds the symbolic fallback, waiting for a
        free worker included; extraction and the fast path are linear-time and not interrupted."""
        response = _require_str("response", response)
        gold = _require_str("gold", gold)
        policy = _policy_of(profile)
        if not deadline > 0:
            raise InvalidArgument("deadline", f"must be positive, got {deadline}")
        if not gold.strip():
            return _result(Comparison(Verdict.INVALID_INPUT, "the reference answer is empty"), "")
        gold_answer = extract_answer(gold, gold_policy)
        if gold_answer is None:
            return _result(Comparison(Verdict.INVALID_INPUT, "no answer found in the reference"), "")
        pred_answer = extract_answer(response, policy)
        if pred_answer is None:
            return _result(Comparison(Verdict.NO_ANSWER, "no final answer found in the response"), "")
        extracted = pred_answer.text
        if len(extracted) > self._max_answer_chars:
            detail = f"extracted answer is {len(extracted)} characters long (limit {self._max_answer_chars})"
            return _result(Comparison(Verdict.WRONG, detail), extracted[:200])
        return _result(self.compare(gold_answer.text, extracted, deadline=deadline), extracted)

    def compare(self, gold_answer: str, pred_answer: str, *, deadline: float = DEFAULT_DEADLINE) -> Comparison:
        """Compare two already-extracted answers: cache, fast path, then the symbolic fallback."""
        key = (gold_answer, pred_answer, self._options)
        cached = self._cache.get(key)
        if cached is not None:
            outcome, timed_out_at = cached
            if timed_out_at is None or deadline <= timed_out_at:  # a longer deadline may succeed
                return outcome
        opts = self._options
        fast = fast_compare(gold_answer, pred_answer, opts.float_rounding, opts.strict, opts.allow_set_relation_comp)
        if fast is not None:
            outcome, cacheable = Comparison(Verdict.CORRECT if fast else Verdict.WRONG, "fast path"), True
        else:
            outcome, cacheable = self._symbolic(gold_answer, pred_answer, deadline)
        if cacheable:
            self._cache.put(key, (outcome, deadline if outcome.verdict is Verdict.TIMEOUT else None))
        return outcome

    def _symbolic(self, gold_answer: str, pred_answer: str, deadline: float) -> tuple[Comparison, bool]:
        """The fallback's outcome and whether it says something about the pair (worth caching)."""
        opts = self._options
        task = self.pool().run(
            symbolic_equal,
            gold_answer,
            pred_answer,
            opts.float_rounding,
            opts.strict,
            opts.allow_set_relation_comp,
            deadline=deadline,
        )
        if task.status is TaskStatus.TIMEOUT:
            return Comparison(Verdict.TIMEOUT, f"symbolic comparison exceeded its {deadline:g}s deadline"), True
        if task.status is TaskStatus.NO_WORKER:
            return Comparison(Verdict.TIMEOUT, f"no symbolic worker was free within {deadline:g}s"), False
        if task.status is not TaskStatus.OK:
            return Comparison(Verdict.INTERNAL, f"symbolic worker {task.status.value}: {task.error}"), False
        equal, gold_parsed = task.value
        if equal:
            return Comparison(Verdict.CORRECT, "symbolic"), True
        if not gold_parsed:
            return Comparison(Verdict.INVALID_INPUT, "the reference answer could not be parsed"), True
        return Comparison(Verdict.WRONG, "symbolic"), True


def check_math(
    response: str,
    gold: str,
    profile: Profile | ExtractionPolicy = Profile.STRICT,
    *,
    deadline: float = DEFAULT_DEADLINE,
    pool: SymbolicPool | None = None,
    options: CompareOptions = CompareOptions(),
) -> RewardResult:
    """One check without a long-lived checker. With `pool=None` a one-off worker is started only if the
    fast path cannot decide (about a second); long-running code should hold a `MathChecker` instead."""
    with MathChecker(pool=pool, pool_size=1, spare_workers=0, cache_size=0, options=options) as checker:
        return checker.check(response, gold, profile, deadline=deadline)
