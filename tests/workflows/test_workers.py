"""The step worker pool under concurrent branches: forks from many threads at once."""

from __future__ import annotations

import os
import threading
import warnings

import lance  # noqa: F401 - registers the at-fork hook that warns in the forking thread

from modelyard.workflows._workers import WorkerPool
from modelyard.workflows.dsl import step


@step
def worker_pid() -> int:
    return os.getpid()


def test_a_decorated_step_runs_in_a_warm_worker_one_step_after_another() -> None:
    # `@step` rebinds the function's name to its spec; the spec must still travel by
    # reference, or every step would pay for a fresh fork.
    pool = WorkerPool()
    try:
        pids = [pool.run(worker_pid, {}, 30, threading.Event(), None) for _ in range(3)]
    finally:
        pool.close()
    assert pids[0] != os.getpid()
    assert pids == [pids[0]] * 3


def test_forks_from_parallel_branches_never_surface_the_fork_warning() -> None:
    # Branches run on threads; each unpicklable step forks its own worker. Warnings are
    # errors here (as in the suite), so one fork outside the ignore filter fails its step.
    pool = WorkerPool()
    errors: list[BaseException] = []
    results: list[int] = []

    def branch(k: int) -> None:
        try:
            offset = k * 100
            for i in range(15):  # a lambda does not pickle: each call forks its own worker
                results.append(pool.run(lambda n: n + offset, {"n": i}, 30, threading.Event(), None))
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = [threading.Thread(target=branch, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    pool.close()
    assert errors == []
    assert sorted(results) == sorted(k * 100 + i for k in range(8) for i in range(15))
