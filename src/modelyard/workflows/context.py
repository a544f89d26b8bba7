"""What a step sees at run time (`ctx` argument) and the two ways a step's code runs.

A step records a side effect *before* waiting on it (`ctx.effect("job", submit)`); when the
engine resumes a step after a crash, `effect` returns the recorded value instead of calling
`submit` again, so the step re-attaches to its job rather than starting a second one.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.errors import FailedPrecondition

POLL_S = 0.05


class StepTimeout(Exception):
    """The step ran past its `timeout_s`."""


class StepCancelled(Exception):
    """The run was cancelled while the step ran."""


class GateClosed(Exception):
    """Raised by a gate whose condition does not hold: what follows it is skipped, and the
    run still succeeds (not promoting a worse model is a normal outcome)."""


class StepError(Exception):
    """The step's code raised; `remote_traceback` holds the worker's traceback."""

    def __init__(self, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


@dataclass
class StepContext:
    """Handed to steps that take a `ctx` argument.

    `platform` is the in-process Platform for steps that run in a thread (component step
    kinds); it is None in a worker process, which must not touch the server's database.
    """

    project: str
    run_id: str
    step: str
    attempt: int
    effects: dict[str, Any]
    platform: Any = None
    actor: str = "system"  # the user the run acts for (who started it or its trigger)
    cancelled: threading.Event = field(default_factory=threading.Event)
    _record: Callable[[str, Any], None] | None = None

    def effect(self, key: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` once per step run: its JSON result is recorded durably before returning."""
        if key in self.effects:
            return self.effects[key]
        value = fn()
        self.record(key, value)
        return value

    def record(self, key: str, value: Any) -> None:
        if self._record is not None:
            self._record(key, value)
        self.effects[key] = value

    def require_platform(self) -> Any:
        if self.platform is None:
            raise FailedPrecondition(f"step {self.step!r} needs the platform: declare it with "
                                     "executor='thread' so it runs inside the server process")
        return self.platform


def _wait(done: Callable[[float], bool], deadline: float | None, cancel: threading.Event) -> None:
    while not done(POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))):
        if cancel.is_set():
            raise StepCancelled("the run was cancelled")
        if deadline is not None and time.monotonic() >= deadline:
            raise StepTimeout("timed out")


def run_in_thread(fn: Callable[..., Any], kwargs: dict[str, Any], timeout_s: float | None,
                  cancel: threading.Event) -> Any:
    """Run in a daemon thread; on timeout or cancel the thread is abandoned (and told so)."""
    box: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn(**kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the engine
            box["error"] = e
        finally:
            finished.set()

    threading.Thread(target=target, daemon=True, name="modelyard-step").start()
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        _wait(finished.wait, deadline, cancel)
    except (StepTimeout, StepCancelled):
        cancel.set()  # cooperative steps watch ctx.cancelled
        raise
    if "error" in box:
        raise box["error"]
    return box.get("value")


def run_in_process(fn: Callable[..., Any], kwargs: dict[str, Any], timeout_s: float | None,
                   cancel: threading.Event, ctx: StepContext | None) -> Any:
    """Fork a worker for one attempt; timeouts and cancellation kill it.

    Effects the child records travel over the pipe and are stored by this (parent) thread
    before the child continues.
    """
    mp = multiprocessing.get_context("fork")
    parent, child = mp.Pipe()
    proc = mp.Process(target=_child_main, args=(fn, kwargs, child, os.getpid(), ctx),
                      name="modelyard-step", daemon=False)
    with warnings.catch_warnings():  # e.g. lance warns on any fork; the child never uses it
        warnings.simplefilter("ignore")
        proc.start()
    child.close()
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        while True:
            _wait(lambda t: parent.poll(t) or not proc.is_alive(), deadline, cancel)
            if not parent.poll():
                proc.join()
                raise StepError(f"the worker process died (exit code {proc.exitcode})")
            try:
                msg = parent.recv()
            except EOFError as e:
                proc.join()
                raise StepError(f"the worker process died (exit code {proc.exitcode})") from e
            if msg[0] == "effect":
                if ctx is not None:
                    ctx.record(msg[1], msg[2])
                parent.send(("ack",))
            elif msg[0] == "ok":
                proc.join()
                return msg[1]
            else:
                proc.join()
                raise StepError(msg[1], msg[2])
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()


def _child_main(fn: Callable[..., Any], kwargs: dict[str, Any], conn: Any, parent_pid: int,
                ctx: StepContext | None) -> None:
    def orphan_watch() -> None:  # the engine died (kill -9): do not keep running unobserved
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=orphan_watch, daemon=True).start()
    if ctx is not None:
        def record(key: str, value: Any) -> None:
            conn.send(("effect", key, value))
            conn.recv()

        child_ctx = StepContext(project=ctx.project, run_id=ctx.run_id, step=ctx.step,
                                attempt=ctx.attempt, effects=dict(ctx.effects), actor=ctx.actor,
                                _record=record)
        kwargs = {**kwargs, "ctx": child_ctx}
    try:
        value = fn(**kwargs)
    except BaseException as e:  # noqa: BLE001 - reported to the engine
        conn.send(("err", f"{type(e).__name__}: {e}", traceback.format_exc()))
        return
    try:
        conn.send(("ok", value))
    except Exception as e:  # noqa: BLE001 - e.g. the value does not pickle
        conn.send(("err", f"the step's return value cannot be sent back: {e}", ""))
