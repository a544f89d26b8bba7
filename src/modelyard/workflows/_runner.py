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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from modelyard.core.errors import InvalidArgument, ModelyardError
from modelyard.sandbox import Limits, Outcome, Sandbox, Spec, read_outcome
from modelyard.workflows import _codec
from modelyard.workflows._spec import SandboxedCall
from modelyard.workflows.context import StepCancelled, StepContext, StepError, StepTimeout

log = logging.getLogger("modelyard.workflows")

DEFAULT_LIMITS = {"memory_mb": 2048, "processes": 256, "open_files": 1024, "disk_mb": 2048}
DEFAULT_STEP_WALL_S = 24 * 3600.0  # a step without `timeout_s`
WALL_GRACE_S = 5.0  # our own deadline ends a step first, with the clearer message
LOAD_TIMEOUT_S = 60.0
MAX_HEADER = 4 * 1024 * 1024  # one message line (an effect's value included)
MAX_DEFINITION = 8 * 1024 * 1024
MAX_JSON_RESULT = 64 * 1024 * 1024  # a JSON output is read into memory: bounded
MAX_PICKLE_RESULT = 1024 * 1024 * 1024  # a pickle is spooled to disk, then stored
MAX_EFFECTS = 1000  # per attempt: each is a database write
TAIL_BYTES = 8192  # of what the code printed, kept for the error message (never more)
POLL_S = 0.05
KILL_GRACE_S = 5.0  # the supervisor's own grace for the sandbox is 3 s
CHUNK = 1024 * 1024


class TokenIssuer(Protocol):
    def __call__(self, actor: str, project: str, ttl_s: int,
                 name: str) -> tuple[str, Callable[[], None]] | None:
        """A project-scoped editor token and the function that revokes it; None when the
        actor cannot hold one (no such user)."""


@dataclass
class _Answer:
    definition: bytes | None = None
    result: str | None = None  # "json" | "pickle"
    json_text: bytes | None = None
    pickle_path: Path | None = None
    error: dict[str, Any] | None = None
    garbled: str | None = None  # the pipe said something that is not the protocol
    effects: list[str] = field(default_factory=list)


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

    def _value(self, answer: _Answer, outcome: Outcome | None, tail: str, step: str,
               limits: Limits) -> Any:
        if answer.error is not None:
            err = answer.error
            if err.get("code") == "exit":
                raise StepError(f"the step's code {_said(err)}; a step ends by returning or "
                                "raising")
            said = _said(err)
            if said.startswith("MemoryError"):
                said += (f" (the step's memory limit is {limits.memory_mb} MB; raise it with "
                         "@step(memory_mb=...))")
            elif outcome is not None and outcome.reason:
                said += f" (the step {outcome.reason})"
            raise StepError(said, str(err.get("traceback") or "")[-8000:])
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
        raise StepError(_died(answer, outcome, tail))

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
                 name: str) -> tuple[_Answer, Outcome | None, str]:
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
        reader = _Reader(proc.stdout, box, record)  # type: ignore[arg-type]
        reader.start()
        # What the code prints is read as it comes and only its tail kept: a step that
        # prints without end must not fill the server's disk or memory.
        errors = _Tail(proc.stderr)  # type: ignore[arg-type]
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
            errors.text()


class _Reader(threading.Thread):
    """Reads the sandboxed process's answer off its stdout; records its effects as they come."""

    def __init__(self, stream: IO[bytes], box: Path,
                 record: Callable[[str, Any], None] | None) -> None:
        super().__init__(daemon=True, name="modelyard-sandbox-pipe")
        self.stream, self.box, self.record = stream, box, record
        self.answer = _Answer()

    def run(self) -> None:
        try:
            self._read()
        except ModelyardError as e:
            self.answer.garbled = e.message
        except Exception as e:  # noqa: BLE001 - anything the pipe says wrong ends the answer
            self.answer.garbled = f"{type(e).__name__}: {e}"
        finally:
            try:
                while self.stream.read(CHUNK):  # drain: a writer must never block on us
                    pass
            except (OSError, ValueError):
                pass
            self.stream.close()

    def _read(self) -> None:
        a = self.answer
        while True:
            line = self.stream.readline(MAX_HEADER + 1)
            if not line:
                return
            if len(line) > MAX_HEADER or not line.endswith(b"\n"):
                raise InvalidArgument("a message on the pipe is too long")
            header = json.loads(line)
            if not isinstance(header, dict):
                raise InvalidArgument("a message on the pipe is not an object")
            if "effect" in header:
                self._effect(header)
            elif "error" in header:
                a.error = {k: header.get(k) for k in ("error", "code", "details", "traceback")}
                return
            elif "definition" in header:
                a.definition = self._exact(_size(header["definition"], MAX_DEFINITION))
                return
            elif header.get("result") == "json":
                a.json_text = self._exact(_size(header.get("size"), MAX_JSON_RESULT))
                a.result = "json"
                return
            elif header.get("result") == "pickle":
                a.pickle_path = self._spool(_size(header.get("size"), MAX_PICKLE_RESULT))
                a.result = "pickle"
                return
            else:
                raise InvalidArgument("an unknown message on the pipe")

    def _effect(self, header: dict[str, Any]) -> None:
        key, seq = header.get("effect"), header.get("seq")
        if self.record is None or not isinstance(key, str) or len(key) > 200 or \
                not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 10**9:
            raise InvalidArgument("a malformed effect on the pipe")
        if len(self.answer.effects) >= MAX_EFFECTS:
            raise InvalidArgument(f"the step recorded more than {MAX_EFFECTS} effects")
        self.record(key, header.get("value"))  # durable before the step goes on
        ack = self.box / "in" / "acks" / str(seq)
        ack.touch()
        ack.chmod(0o644)
        self.answer.effects.append(key)

    def _exact(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise InvalidArgument("the answer was cut short")
        return data

    def _spool(self, n: int) -> Path:
        path = self.box / "result.pkl"
        left = n
        with open(path, "wb") as f:
            while left:
                chunk = self.stream.read(min(CHUNK, left))
                if not chunk:
                    raise InvalidArgument("the answer was cut short")
                f.write(chunk)
                left -= len(chunk)
        return path


def _size(value: Any, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument("an answer without a valid size")
    if value > limit:
        raise InvalidArgument(f"the answer is {value} bytes, more than the {limit} a step may "
                              "return; write large results to a dataset or the model registry")
    return value


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


class _Tail(threading.Thread):
    """Reads a stream to its end, keeping only its last TAIL_BYTES."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True, name="modelyard-sandbox-log")
        self.stream = stream
        self.kept = b""

    def run(self) -> None:
        try:
            while chunk := self.stream.read1(CHUNK):  # type: ignore[attr-defined]
                self.kept = (self.kept + chunk)[-TAIL_BYTES:]
        except (OSError, ValueError):
            pass
        finally:
            self.stream.close()

    def text(self, n: int = 1500) -> str:
        return self.kept[-n:].decode("utf-8", "replace").strip()


def _said(err: dict[str, Any]) -> str:
    return str(err.get("error") or "an error")[:4000]


def _tb(err: dict[str, Any]) -> str:
    tb = str(err.get("traceback") or "").strip()
    return f"\n{tb[-3000:]}" if tb else ""


def _died(answer: _Answer, outcome: Outcome | None, tail: str) -> str:
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
    return why + (f"; its last output:\n{tail}" if tail else "")


_SIGNALS = {s.value: s.name for s in signal.Signals}
