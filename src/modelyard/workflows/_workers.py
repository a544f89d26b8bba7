"""Inline Python steps in worker processes: a warm pool, and a one-off fork as the fallback.

A pooled worker is forked once and then runs one step after another (the function travels
by reference, pickled; its module must be importable). A step whose function or inputs do not
pickle gets a worker forked for that attempt alone, which inherits them. Either way timeouts
and cancellation kill the worker, and effects the step records travel over the pipe and are
stored by the engine's thread before the step goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.workflows.context import StepContext, StepError, _wait

MAX_IDLE = 8
_mp = multiprocessing.get_context("fork")
# catch_warnings swaps the process-wide filter list, so two branches forking at once could
# restore each other's filters mid-fork and let lance's at-fork warning through (an error
# under `-W error`). One lock makes each fork and its filter change one step.
_fork_lock = threading.Lock()


@dataclass
class _Worker:
    proc: Any
    conn: Any


def _fork(target: Callable[..., None], *args: Any) -> _Worker:
    parent, child = _mp.Pipe()
    proc = _mp.Process(target=target, args=(child, os.getpid(), *args), name="modelyard-step",
                       daemon=False)
    with _fork_lock, warnings.catch_warnings():  # lance warns on any fork; workers never use it
        warnings.simplefilter("ignore")
        proc.start()
    child.close()
    return _Worker(proc, parent)


def _kill(w: _Worker) -> None:
    if w.proc.is_alive():
        w.proc.kill()
    w.proc.join()
    w.conn.close()


class WorkerPool:
    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, fn: Callable[..., Any], kwargs: dict[str, Any], timeout_s: float | None,
            cancel: threading.Event, ctx: StepContext | None) -> Any:
        info = _ctx_info(ctx)
        try:
            payload = pickle.dumps((fn, kwargs, info))
        except Exception:  # noqa: BLE001 - closures, local functions: fork for this attempt
            return self._run_once(fn, kwargs, timeout_s, cancel, ctx)
        w = self._take()
        healthy = False
        try:
            w.conn.send_bytes(payload)
            value, healthy = _exchange(w, _deadline(timeout_s), cancel, ctx)
            return value
        finally:
            if healthy:
                self._give_back(w)
            else:
                _kill(w)

    def _run_once(self, fn: Callable[..., Any], kwargs: dict[str, Any],
                  timeout_s: float | None, cancel: threading.Event,
                  ctx: StepContext | None) -> Any:
        w = _fork(_run_once_main, fn, kwargs, _ctx_info(ctx))
        try:
            return _exchange(w, _deadline(timeout_s), cancel, ctx)[0]
        finally:
            _kill(w)

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.proc.is_alive():
                    return w
                _kill(w)
        return _fork(_pool_main)

    def _give_back(self, w: _Worker) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append(w)
                return
        _kill(w)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for w in idle:
            _kill(w)


def _deadline(timeout_s: float | None) -> float | None:
    return time.monotonic() + timeout_s if timeout_s else None


def _ctx_info(ctx: StepContext | None) -> tuple[Any, ...] | None:
    if ctx is None:
        return None
    return (ctx.project, ctx.run_id, ctx.step, ctx.attempt, dict(ctx.effects), ctx.actor)


def _exchange(w: _Worker, deadline: float | None, cancel: threading.Event,
              ctx: StepContext | None) -> tuple[Any, bool]:
    """(the step's value, whether the worker can take another step); raises the step's error."""
    while True:
        _wait(lambda t: w.conn.poll(t) or not w.proc.is_alive(), deadline, cancel)
        try:
            if not w.conn.poll():
                raise EOFError
            msg = w.conn.recv()
        except (EOFError, OSError) as e:
            w.proc.join(1)
            raise StepError(f"the worker process died (exit code {w.proc.exitcode})") from e
        if msg[0] == "effect":
            if ctx is not None:
                ctx.record(msg[1], msg[2])
            w.conn.send(("ack",))
        elif msg[0] == "ok":
            return msg[1], True
        else:
            raise StepError(msg[1], msg[2])


# -- inside the worker ---------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:  # the engine died (kill -9): do not keep running unobserved
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def _call(conn: Any, fn: Callable[..., Any], kwargs: dict[str, Any],
          info: tuple[Any, ...] | None) -> None:
    if info is not None:
        def record(key: str, value: Any) -> None:
            conn.send(("effect", key, value))
            conn.recv()

        project, run_id, step, attempt, effects, actor = info
        kwargs = {**kwargs, "ctx": StepContext(project=project, run_id=run_id, step=step,
                                               attempt=attempt, effects=effects, actor=actor,
                                               _record=record)}
    try:
        value = fn(**kwargs)
    except BaseException as e:  # noqa: BLE001 - reported to the engine
        conn.send(("err", f"{type(e).__name__}: {e}", traceback.format_exc()))
        return
    try:
        conn.send(("ok", value))
    except Exception as e:  # noqa: BLE001 - e.g. the value does not pickle
        conn.send(("err", f"the step's return value cannot be sent back: {e}", ""))


def _pool_main(conn: Any, parent_pid: int) -> None:
    _watch_parent(parent_pid)
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            os._exit(0)
        try:
            fn, kwargs, info = pickle.loads(raw)
        except BaseException as e:  # noqa: BLE001
            conn.send(("err", f"cannot load the step in the worker: {e}",
                       traceback.format_exc()))
            continue
        _call(conn, fn, kwargs, info)


def _run_once_main(conn: Any, parent_pid: int, fn: Callable[..., Any], kwargs: dict[str, Any],
                   info: tuple[Any, ...] | None) -> None:
    _watch_parent(parent_pid)
    _call(conn, fn, kwargs, info)
