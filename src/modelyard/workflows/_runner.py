"""Runs pipeline code in the sandbox for the server: loading a package's definition, and one
attempt of a Python step, each in a fresh sandboxed process (`_sandboxed`).

The process gets a read-only folder (its request, the package, pickled inputs, effect acks)
bound at the same path, a private size-limited /tmp as its working directory, limits from the
step's options, and, for a step that takes `ctx`, an API token scoped to the run's project that
is revoked when the attempt ends. It answers over its stdout pipe; everything it says is
checked here as hostile input. Cancel and timeout kill its process group. The server never
unpickles what a step returns: a pickle goes into the content store as the bytes it is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from modelyard.core.errors import InvalidArgument
from modelyard.sandbox import Limits, Outcome, Sandbox, Spec, read_outcome
from modelyard.workflows import _codec
from modelyard.workflows._pipe import CHUNK, TAIL_BYTES, Answer, Reader, Tail
from modelyard.workflows._spec import SandboxedCall
from modelyard.workflows.context import StepCancelled, StepContext, StepError, StepTimeout

log = logging.getLogger("modelyard.workflows")

DEFAULT_LIMITS = {"memory_mb": 2048, "processes": 256, "open_files": 1024, "disk_mb": 2048}
DEFAULT_STEP_WALL_S = 24 * 3600.0  # a step without `timeout_s`
WALL_GRACE_S = 5.0  # our own deadline ends a step first, with the clearer message
LOAD_TIMEOUT_S = 60.0
POLL_S = 0.05
KILL_GRACE_S = 5.0  # the supervisor's own grace for the sandbox is 3 s


class TokenIssuer(Protocol):
    def __call__(self, actor: str, project: str, ttl_s: int,
                 name: str) -> tuple[str, Callable[[], None]] | None:
        """A project-scoped editor token and the function that revokes it; None when the
        actor cannot hold one (no such user)."""


class SandboxRunner:
    def __init__(self, sandbox: Sandbox, cas: Any, root: Path, public_url: str,
                 issue_token: TokenIssuer | None = None) -> None:
        self.sandbox = sandbox
        self.cas = cas
        self.root = root
        self.public_url = public_url
        self.issue_token = issue_token
        self.load_timeout_s = LOAD_TIMEOUT_S

    # -- loading a definition -----------------------------------------------------------------
    def load(self, package: bytes, entry: str) -> Any:
        """The JSON document the package's entry describes (unchecked: see `_spec.parse`).

        Raises InvalidArgument naming what went wrong: the definition's own error (with its
        details), an exception, sys.exit, a crash, a limit, or the load timeout.
        """
        box = self._box()
        try:
            (box / "in" / "package.tar").write_bytes(package)
            self._request(box, {"entry": entry})
            limits = Limits(wall_s=self.load_timeout_s + WALL_GRACE_S, **DEFAULT_LIMITS)
            try:
                answer, outcome, tail = self._session(box, "load", limits, self.load_timeout_s,
                                                      None, None, "pipeline-load")
            except StepTimeout:
                raise InvalidArgument(
                    f"loading pipeline {entry!r} did not finish within {self.load_timeout_s:g}s "
                    "(the load timeout) and was stopped; importing the package and building the "
                    "pipeline must not block: no waiting on input, locks, sleeps or the network "
                    "at import time", {"entry": entry}) from None
            if answer.error is not None:
                err = answer.error
                details = err.get("details") if isinstance(err.get("details"), dict) else {}
                if err.get("code") == "invalid_argument":
                    raise InvalidArgument(str(err.get("error"))[:4000], details)
                raise InvalidArgument(f"loading pipeline {entry!r} failed: "
                                      f"{_said(err)}{_tb(err)}", {"entry": entry})
            if answer.definition is None:
                raise InvalidArgument(f"loading pipeline {entry!r} failed: "
                                      f"{_died(answer, outcome, tail)}", {"entry": entry})
            try:
                return json.loads(answer.definition)
            except (ValueError, RecursionError):
                raise InvalidArgument(f"loading pipeline {entry!r} gave a definition that is "
                                      "not JSON") from None
        finally:
            shutil.rmtree(box, ignore_errors=True)

    # -- one attempt of a step ----------------------------------------------------------------
    def step(self, call: SandboxedCall, kwargs: dict[str, Any], ctx: StepContext,
             timeout_s: float | None, cancel: threading.Event) -> Any:
        """The step's value (JSON and bytes) or an `Opaque` reference to its pickle.

        Raises StepTimeout, StepCancelled, or StepError saying how the step ended.
        """
        box = self._box()
        revoke: Callable[[], None] | None = None
        try:
            with self.cas.open(call.package) as src, open(box / "in" / "package.tar", "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            for digest in _codec.opaque_digests(kwargs):
                with self.cas.open(digest) as src, \
                        open(box / "in" / "inputs" / f"{digest}.pkl", "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            wall = timeout_s or DEFAULT_STEP_WALL_S
            api = None
            if call.wants_ctx and self.issue_token is not None:
                issued = self.issue_token(ctx.actor, ctx.project, int(wall + 300),
                                          f"pipeline:{ctx.run_id}:{ctx.step}")
                if issued is not None:
                    token, revoke = issued
                    api = {"url": self.public_url, "token": token}
            self._request(box, {
                "entry": call.entry, "step": call.step,
                "args": {k: _codec.to_tagged(v) for k, v in kwargs.items()},
                "ctx": {"project": ctx.project, "run_id": ctx.run_id, "step": ctx.step,
                        "attempt": ctx.attempt, "effects": ctx.effects, "actor": ctx.actor},
                "api": api})
            limits = Limits(wall_s=wall + WALL_GRACE_S, **{**DEFAULT_LIMITS, **call.limits})
            answer, outcome, tail = self._session(
                box, "step", limits, timeout_s, cancel,
                lambda key, value: ctx.record(key, value), f"step-{ctx.run_id}-{ctx.step}")
            return self._value(answer, outcome, tail, ctx.step, limits)
        finally:
            if revoke is not None:
                try:
                    revoke()
                except Exception:  # noqa: BLE001 - it expires on its own
                    log.warning("could not revoke the token of step %s", ctx.step, exc_info=True)
            shutil.rmtree(box, ignore_errors=True)

    def _value(self, answer: Answer, outcome: Outcome | None, tail: str, step: str,
               limits: Limits) -> Any:
        if answer.error is not None:
            err = answer.error
            if err.get("code") == "exit":
                raise StepError(f"the step's code {_said(err)}; a step ends by returning or "
                                "raising", log_tail=tail)
            said = _said(err)
            if said.startswith("MemoryError"):
                said += (f" (the step's memory limit is {limits.memory_mb} MB; raise it with "
                         "@step(memory_mb=...))")
            elif outcome is not None and outcome.reason:
                said += f" (the step {outcome.reason})"
            raise StepError(said, str(err.get("traceback") or "")[-8000:], tail)
        if answer.result == "json" and answer.json_text is not None:
            try:
                return _codec.decode(answer.json_text)
            except (_codec.NotJson, ValueError) as e:
                raise StepError(f"the step's answer is not valid (tagged) JSON: {e}") from None
        if answer.result == "pickle" and answer.pickle_path is not None:
            with open(answer.pickle_path, "rb") as f:
                if f.read(len(_codec.MAGIC)) == _codec.MAGIC:
                    raise StepError("the step's answer claims to be a pickle but is not one")
                f.seek(0)
                stored = self.cas.put(f)
            return _codec.Opaque(stored.digest, step)
        raise StepError(_died(answer, outcome, tail), log_tail=tail)

    # -- the process ------------------------------------------------------------------------------
    def _box(self) -> Path:
        box = self.root / uuid.uuid4().hex
        (box / "in" / "inputs").mkdir(parents=True)
        (box / "in" / "acks").mkdir()
        return box

    def _request(self, box: Path, req: dict[str, Any]) -> None:
        (box / "in" / "request.json").write_text(json.dumps(req))
        # A server running as root runs the code as another uid: it must read its folder.
        # The data dir (0700) keeps everyone else out.
        for path in (box, box / "in", box / "in" / "inputs", box / "in" / "acks"):
            path.chmod(0o755)
        for path in (box / "in").rglob("*"):
            if path.is_file():
                path.chmod(0o644)

    def _session(self, box: Path, mode: str, limits: Limits, timeout_s: float | None,
                 cancel: threading.Event | None, record: Callable[[str, Any], None] | None,
                 name: str) -> tuple[Answer, Outcome | None, str]:
        self.sandbox.check_allowed()
        in_dir = box / "in"
        # Under bubblewrap the working dir is the sandbox's private, size-limited /tmp; without
        # it, a folder of the box (so it goes when the box goes).
        work = None
        if self.sandbox.mode == "off":
            work = box / "work"
            work.mkdir()
        spec = Spec(argv=[sys.executable, "-m", "modelyard.workflows._sandboxed", mode,
                          str(in_dir)],
                    env={"PYTHONDONTWRITEBYTECODE": "1"},
                    limits=limits, exit_file=box / "exit.json", work_dir=work,
                    ro_binds={str(in_dir): str(in_dir)}, name=name)
        deadline = time.monotonic() + timeout_s if timeout_s else None
        proc = subprocess.Popen(self.sandbox.command(spec), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        reader = Reader(proc.stdout, box, record)  # type: ignore[arg-type]
        reader.start()
        # What the code prints is read as it comes and only its tail kept: a step that
        # prints without end must not fill the server's disk or memory.
        errors = Tail(proc.stderr)  # type: ignore[arg-type]
        errors.start()
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.is_set():
                    raise StepCancelled("the run was cancelled")
                if deadline is not None and time.monotonic() >= deadline:
                    raise StepTimeout("timed out")
                try:
                    proc.wait(POLL_S)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if proc.poll() is None:
                _kill(proc)
            reader.join(10)
            errors.join(10)
        return reader.answer, read_outcome(box / "exit.json") or Outcome(proc.returncode), \
            errors.text(TAIL_BYTES)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Ends a run: the supervisor first (it stops the sandbox and removes its cgroup), then,
    should it linger, the whole process group."""
    try:
        proc.terminate()
        proc.wait(KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _said(err: dict[str, Any]) -> str:
    return str(err.get("error") or "an error")[:4000]


def _tb(err: dict[str, Any]) -> str:
    tb = str(err.get("traceback") or "").strip()
    return f"\n{tb[-3000:]}" if tb else ""


def _died(answer: Answer, outcome: Outcome | None, tail: str) -> str:
    """How a process that gave no answer ended, in words a user can act on."""
    if answer.garbled:
        why = f"its answer was not understood ({answer.garbled})"
    elif outcome is not None and outcome.reason:
        why = f"it was stopped: {outcome.reason}"
    elif outcome is None or outcome.code is None:
        why = "its process ended without an answer"
    elif outcome.code > 128 and outcome.code - 128 in _SIGNALS:
        sig = _SIGNALS[outcome.code - 128]
        why = f"its process was killed by {sig} (exit code {outcome.code})" + \
            (", as os.abort() does" if sig == "SIGABRT" else "")
    elif outcome.code < 0 and -outcome.code in _SIGNALS:
        why = f"its process was killed by {_SIGNALS[-outcome.code]}"
    else:
        why = f"its process exited with code {outcome.code} before answering, as os._exit() does"
    return why + (f"; its last output:\n{tail[-1500:]}" if tail else "")


_SIGNALS = {s.value: s.name for s in signal.Signals}
