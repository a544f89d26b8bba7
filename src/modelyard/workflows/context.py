"""What a step sees at run time (`ctx` argument) and how a step's code runs in a thread.

A step records a side effect *before* waiting on it (`ctx.effect("job", submit)`); when the
engine resumes a step after a crash, `effect` returns the recorded value instead of calling
`submit` again, so the step re-attaches to its job rather than starting a second one.
"""

from __future__ import annotations

import threading
import time
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
    """The step's code raised; `remote_traceback` holds the sandboxed process's traceback and
    `log_tail` the end of what it printed (both kept on the step run)."""

    def __init__(self, message: str, remote_traceback: str = "", log_tail: str = "") -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback
        self.log_tail = log_tail


@dataclass
class StepContext:
    """Handed to steps that take a `ctx` argument.

    `platform` is the in-process Platform for modelyard's own steps (component step kinds,
    built-in pipelines), which run in the server. A Python step of a package runs in the
    sandbox: its `platform` is None and `client` is its way to the platform, the SDK
    authenticated by a token scoped to the run's project (editor) and revoked when the step ends.
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
    _client: Callable[[], Any] | None = None
    _client_made: Any = None

    @property
    def client(self) -> Any:
        """A `modelyard.sdk.Client` on the run's project (sandboxed steps only)."""
        if self._client_made is None:
            if self._client is None:
                raise FailedPrecondition(f"step {self.step!r} has no API client: only Python "
                                         "steps of a pipeline package get one, and only when "
                                         "the run's user exists")
            self._client_made = self._client()
        return self._client_made

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
            raise FailedPrecondition(f"step {self.step!r} has no platform: it runs in the "
                                     "sandbox; reach the platform through `ctx.client` (the SDK)")
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
