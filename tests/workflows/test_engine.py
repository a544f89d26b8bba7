"""The engine on inline Python steps: parallelism, retries, timeouts, cancellation, caching."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from modelyard.workflows.models import Run
from modelyard.workflows.service import WorkflowService
from tests.workflows._packages import count, register


def _states(run: Run) -> dict[str, str]:
    return {s.step: s.state for s in run.steps}


def _run(wf: WorkflowService, pipeline: str, **params: object) -> Run:
    name = register(wf, pipeline).name
    started = wf.run("alpha", name, dict(params), "tester")
    return wf.wait("alpha", started.id, timeout_s=60)


def test_fan_out_maps_a_step_over_each_element_of_a_list(wf: WorkflowService) -> None:
    run = _run(wf, "fanout", n=5)
    assert run.state == "succeeded", run.error
    out = {s.step: s.output for s in run.steps}
    assert out["square"] == [1, 4, 9, 16, 25]
    assert out["total"] == 55
    assert [s.step for s in run.steps if s.step.startswith("square[")] == [
        f"square[{i}]" for i in range(5)]


def test_independent_branches_run_at_the_same_time(wf: WorkflowService, workdir: str) -> None:
    run = _run(wf, "parallel", workdir=workdir)
    assert run.state == "succeeded", run.error
    assert {s.step: s.output for s in run.steps}["join"] == ["left", "right"]


def test_a_failing_step_is_retried_with_backoff_until_it_succeeds(
        wf: WorkflowService, workdir: str) -> None:
    run = _run(wf, "retrying", workdir=workdir)
    assert run.state == "succeeded", run.error
    flaky = run.steps[0]
    assert flaky.attempts == 3
    assert count(workdir, "flaky") == 3


def test_a_step_past_its_timeout_fails_and_its_dependents_never_run(
        wf: WorkflowService, workdir: str) -> None:
    run = _run(wf, "timing_out", workdir=workdir)
    assert run.state == "failed"
    steps = {s.step: s for s in run.steps}
    assert steps["sleepy"].state == "failed"
    assert "timed out after 0.5s" in (steps["sleepy"].error or "")
    assert steps["after_sleepy"].state == "skipped"
    assert count(workdir, "after") == 0
    assert "sleepy" in (run.error or "")


def test_cancelling_a_run_stops_its_running_step_and_skips_the_rest(
        wf: WorkflowService, workdir: str) -> None:
    register(wf, "cancellable")
    started = wf.run("alpha", "cancellable", {"workdir": workdir}, "tester")
    waiter = threading.Thread(target=wf.wait, args=("alpha", started.id, 60))
    waiter.start()
    deadline = time.monotonic() + 30
    while count(workdir, "blocker") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    wf.cancel("alpha", started.id)
    waiter.join(60)
    run = wf.get_run("alpha", started.id)
    assert run.state == "cancelled"
    assert _states(run) == {"blocker": "cancelled", "after_blocker": "cancelled"}
    assert count(workdir, "after") == 0


def test_an_unchanged_rerun_is_served_from_cache(wf: WorkflowService, workdir: str) -> None:
    first = _run(wf, "cached", workdir=workdir)
    second = _run(wf, "cached", workdir=workdir)
    assert first.state == second.state == "succeeded"
    assert set(_states(second).values()) == {"cached"}
    assert [count(workdir, s) for s in "abcd"] == [1, 1, 1, 1]
    assert {s.step: s.output for s in second.steps} == {s.step: s.output for s in first.steps}


def test_changing_one_input_reruns_only_what_depends_on_it(
        wf: WorkflowService, workdir: str) -> None:
    _run(wf, "cached", workdir=workdir)
    changed = _run(wf, "cached", workdir=workdir, y=7)
    assert changed.state == "succeeded"
    assert _states(changed) == {"a": "cached", "b": "cached", "c": "succeeded",
                                "d": "succeeded"}
    assert [count(workdir, s) for s in "abcd"] == [1, 1, 2, 2]
    assert {s.step: s.output for s in changed.steps}["d"] == {"b": 11, "c": "y=7"}


def test_a_run_records_inputs_digests_and_attempts_per_step(
        wf: WorkflowService, workdir: str) -> None:
    run = _run(wf, "cached", workdir=workdir)
    for s in run.steps:
        assert s.attempts == 1 and s.inputs_digest and s.cache_key
        assert s.started_at is not None and s.finished_at is not None
    assert Path(workdir, "a.log").exists()


def test_a_closed_gate_skips_what_follows_and_the_run_still_succeeds(
        wf: WorkflowService, workdir: str) -> None:
    closed = _run(wf, "gated", n=1, workdir=workdir)
    assert closed.state == "succeeded", closed.error
    assert _states(closed) == {"score": "succeeded", "enough": "skipped", "ship": "skipped"}
    assert "value=1 is not >= 5" in (closed.steps[1].error or "")
    opened = _run(wf, "gated", n=9, workdir=workdir)
    assert _states(opened) == {"score": "succeeded", "enough": "succeeded",
                               "ship": "succeeded"}
    assert count(workdir, "ship") == 1


def test_an_output_that_is_not_json_is_stored_by_digest_and_handed_on(
        wf: WorkflowService) -> None:
    run = _run(wf, "arrays", n=4)
    assert run.state == "succeeded", run.error
    steps = {s.step: s for s in run.steps}
    assert steps["matrix"].output is None and len(steps["matrix"].output_ref or "") == 64
    assert steps["matrix"].output_digest == steps["matrix"].output_ref
    assert steps["trace"].output == 4.0


def test_each_python_step_runs_in_a_process_of_its_own_never_in_the_server(
        wf: WorkflowService) -> None:
    import os
    import sys

    run = _run(wf, "where")
    assert run.state == "succeeded", run.error
    first, second = {s.step: s.output for s in run.steps}["next_pid"]
    assert os.getpid() not in (first, second)  # the in-process server of this test
    assert first != second  # a fresh process per step
    assert "wfpipes" not in sys.modules  # the server never imported the user's module


def test_a_failed_attempt_is_not_retried_before_its_backoff(
        wf: WorkflowService, workdir: str) -> None:
    register(wf, "backing_off")
    started = wf.run("alpha", "backing-off", {"workdir": workdir}, "tester")
    deadline = time.monotonic() + 60
    run = wf.get_run("alpha", started.id)
    while not (run.steps and run.steps[0].attempts == 1 and run.steps[0].state == "pending") \
            and time.monotonic() < deadline:
        run = wf.wait("alpha", started.id, timeout_s=0.2)  # drives the engine
    run = wf.wait("alpha", started.id, timeout_s=2)  # keeps driving: nothing is due for 20 s
    down = run.steps[0]
    assert run.state == "running"
    assert (down.state, down.attempts) == ("pending", 1)
    assert "ConnectionError: the service is down; retrying in 20s" == down.error
    assert count(workdir, "down") == 1
    wf.cancel("alpha", started.id)
    assert wf.wait("alpha", started.id, timeout_s=30).state == "cancelled"
    assert count(workdir, "down") == 1
