"""The killable worker pool: deadlines, replacement of killed workers, threads, errors, close.

Tasks are builtins (picklable by reference, nothing to import in the workers): time.sleep overruns a
deadline, os._exit kills its worker, int("x") raises, bytearray(n) hits the memory limit.
"""

from __future__ import annotations

import operator
import os
import threading
import time

import pytest

from r1.errors import FailedPrecondition, InvalidArgument
from r1.rewards.symbolic_pool import SymbolicPool, TaskStatus

SLACK = 5.0  # process management on a loaded machine; never a speed assertion


@pytest.fixture(scope="module")
def pool():
    with SymbolicPool(1, memory_limit_bytes=512 << 20) as p:
        assert p.wait_ready(60)
        yield p


def test_runs_a_task(pool: SymbolicPool) -> None:
    result = pool.run(operator.add, 2, 3, deadline=10)
    assert result.status is TaskStatus.OK and result.value == 5


def test_a_task_past_its_deadline_is_killed_and_the_worker_replaced(pool: SymbolicPool) -> None:
    start = time.monotonic()
    result = pool.run(time.sleep, 60, deadline=0.5)
    assert result.status is TaskStatus.TIMEOUT
    assert time.monotonic() - start < 0.5 + SLACK
    # one worker only: the next answer must come from its replacement
    assert pool.run(operator.mul, 6, 7, deadline=30).value == 42


def test_a_crashed_worker_is_reported_and_replaced(pool: SymbolicPool) -> None:
    assert pool.run(os._exit, 3, deadline=10).status is TaskStatus.CRASHED
    assert pool.run(operator.add, 1, 1, deadline=30).value == 2


def test_an_exception_is_an_error_and_the_worker_stays(pool: SymbolicPool) -> None:
    result = pool.run(int, "not a number", deadline=10)
    assert result.status is TaskStatus.ERROR and result.error == "ValueError"
    assert pool.run(operator.add, 1, 2, deadline=10).value == 3


def test_memory_limit_turns_a_runaway_allocation_into_an_error(pool: SymbolicPool) -> None:
    result = pool.run(bytearray, 2 << 30, deadline=10)
    assert result.status is TaskStatus.ERROR and result.error == "MemoryError"


def test_works_from_non_main_threads(pool: SymbolicPool) -> None:
    results: list = []

    def worker() -> None:
        results.append(pool.run(operator.add, 20, 22, deadline=10))
        results.append(pool.run(time.sleep, 60, deadline=0.3))
        results.append(pool.run(operator.add, 1, 1, deadline=30))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(120)
    assert [r.status for r in results] == [TaskStatus.OK, TaskStatus.TIMEOUT, TaskStatus.OK]
    assert results[0].value == 42 and results[2].value == 2


def test_many_threads_share_a_pool() -> None:
    with SymbolicPool(2, memory_limit_bytes=None) as shared:
        values: list[int] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            value = shared.run(operator.mul, i, i, deadline=30).value
            with lock:
                values.append(value)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(values) == [i * i for i in range(8)]


def test_the_deadline_includes_waiting_for_a_worker() -> None:
    with SymbolicPool(1, spares=0) as single:
        assert single.wait_ready(60)
        busy = threading.Thread(target=single.run, args=(time.sleep, 2), kwargs={"deadline": 30})
        busy.start()
        time.sleep(0.3)
        start = time.monotonic()
        assert single.run(operator.add, 1, 1, deadline=0.3).status is TaskStatus.NO_WORKER
        assert time.monotonic() - start < 0.3 + SLACK
        busy.join(30)
        assert single.run(operator.add, 1, 1, deadline=10).value == 2


def test_close_stops_workers_and_wakes_waiters() -> None:
    small = SymbolicPool(1)
    assert small.wait_ready(60)
    outcomes: list = []

    def busy() -> None:
        outcomes.append(small.run(time.sleep, 60, deadline=60).status)

    def waiting() -> None:
        try:
            small.run(operator.add, 1, 1, deadline=10)
            outcomes.append("ran")
        except FailedPrecondition:
            outcomes.append("closed")

    first = threading.Thread(target=busy)
    first.start()
    time.sleep(0.3)
    second = threading.Thread(target=waiting)
    second.start()
    time.sleep(0.3)
    small.close()
    first.join(30)
    second.join(30)
    assert sorted(map(str, outcomes)) == sorted(["TaskStatus.CRASHED", "closed"])
    with pytest.raises(FailedPrecondition):
        small.run(operator.add, 1, 1, deadline=1)
    small.close()  # idempotent


def test_bad_arguments(pool: SymbolicPool) -> None:
    with pytest.raises(InvalidArgument):
        pool.run(operator.add, 1, 1, deadline=0)
    with pytest.raises(InvalidArgument):
        SymbolicPool(0)
