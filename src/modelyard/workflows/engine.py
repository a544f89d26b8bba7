"""The engine: runs ready steps of active runs in a bounded pool, durably.

Every transition is written to the store before it is acted on, so a new engine on the same
database resumes where a crashed one stopped: finished steps keep their outputs and never run
again; a step that was running is started again, replaying the side effects it had recorded.
Several engines (server replicas) may share a database: each run is driven by the one engine
holding its lease (`owner`, renewed while it runs); a lease whose engine died is taken over,
at once when that engine was a process of this host, else when the lease expires.

Python steps of a package run in the sandbox (`_runner`), one fresh process per attempt; the
built-in kinds and built-in pipelines' own steps are modelyard's code and run in a thread of
the server with the platform. Outputs are JSON (bytes allowed, see `_codec`) or, for what a
sandboxed step returns that is not, pickled bytes the server stores and never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from modelyard.core.ids import utcnow
from modelyard.workflows import _codec
from modelyard.workflows._codec import Opaque
from modelyard.workflows._spec import LOCAL, SandboxedCall
from modelyard.workflows.context import (
    GateClosed,
    StepCancelled,
    StepContext,
    StepError,
    StepTimeout,
    run_in_thread,
)
from modelyard.workflows.dsl import Pipeline, StepSpec
from modelyard.workflows.models import DONE_STEP, Run
from modelyard.workflows.store import WorkflowStore

log = logging.getLogger("modelyard.workflows")
MAX_JSON_OUTPUT = 256 * 1024
_STOPPED = ("failed", "cancelled", "skipped")
LEASE_S = 30.0
RENEW_EVERY_S = 5.0


@dataclass
class Node:
    """The working state of one step run (a step, or one element of a mapped step)."""

    key: str
    spec: StepSpec
    row_id: str
    state: str = "pending"
    attempts: int = 0
    item: Any = None  # the element a mapped step's element receives
    output: Any = None
    output_digest: str | None = None
    effects: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    not_before: float = 0.0
    inflight: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class ActiveRun:
    run: Run
    pipeline: Pipeline
    nodes: dict[str, Node]
    elements: dict[str, list[Node]]
    cancelling: bool = False


# Runs one attempt of a sandboxed step: (call, kwargs, ctx, timeout_s, cancel) -> value.
SandboxRun = Callable[[SandboxedCall, dict[str, Any], StepContext, "float | None",
                       threading.Event], Any]


class Engine:
    def __init__(self, store: WorkflowStore, load: Callable[[Run], Pipeline], cas: Any,
                 platform: Any = None, max_workers: int = 4,
                 sandboxed: SandboxRun | None = None) -> None:
        self.store = store
        self.load = load
        self.cas = cas
        self.platform = platform
        self.sandboxed = sandboxed
        self.wake = threading.Event()
        self._lock = threading.RLock()
        self._runs: dict[str, ActiveRun] = {}
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="modelyard-pipeline")
        self._stopping = False
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._renewed = 0.0

    # -- driving ----------------------------------------------------------------------------
    def tick(self) -> int:
        """Advance every active run this engine holds (or can claim) once; returns how many
        runs it drives."""
        with self._lock:
            now = utcnow()
            lease = now + timedelta(seconds=LEASE_S)
            if self._runs and time.monotonic() - self._renewed > RENEW_EVERY_S:
                self.store.renew_leases(self.owner, lease)
                self._renewed = time.monotonic()
            for run_id, cancel, owner in self.store.active_runs():
                ar = self._runs.get(run_id)
                if ar is None:
                    dead = {owner} if owner and _dead(owner) else set()
                    if not self.store.claim_run(run_id, self.owner, lease, now, dead):
                        continue  # another live engine drives it
                    ar = self._adopt(run_id)
                if ar is None:
                    continue
                if cancel or ar.cancelling:
                    self._cancel(ar)
                else:
                    self._advance(ar)
            return len(self._runs)

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    def next_wakeup(self) -> float | None:
        with self._lock:
            waits = [n.not_before for ar in self._runs.values() for n in self._all(ar)
                     if n.state == "pending" and n.not_before > 0]
        return min(waits) - time.time() if waits else None

    def shutdown(self) -> None:
        """Stop in-flight steps without recording an outcome: the next engine resumes them."""
        self._stopping = True
        with self._lock:
            for ar in self._runs.values():
                for n in self._all(ar):
                    n.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self.store.release_runs(self.owner)  # another engine may take them over at once
        except Exception:
            log.warning("could not release the runs of engine %s", self.owner, exc_info=True)

    # -- adoption (new runs and runs left by a crashed engine) -----------------------------
    def _adopt(self, run_id: str) -> ActiveRun | None:
        run = self.store.get_run(run_id)
        try:
            pipeline = self.load(run)
        except Exception as e:  # noqa: BLE001 - the run fails, the engine goes on
            self._finish_run(run_id, "failed", f"cannot load pipeline {run.pipeline!r}: {e}")
            return None
        rows = {s.step: s for s in run.steps}
        nodes: dict[str, Node] = {}
        elements: dict[str, list[Node]] = {}
        for name in pipeline.order:
            nodes[name] = self._node(run_id, name, pipeline.steps[name], rows.get(name))
            if pipeline.steps[name].map_over:
                elems = sorted((r for k, r in rows.items() if k.startswith(f"{name}[")),
                               key=lambda r: int(r.step[len(name) + 1:-1]))
                if elems:
                    elements[name] = [self._node(run_id, r.step, pipeline.steps[name], r)
                                      for r in elems]
        if run.state == "queued":
            self.store.update_run(run_id, state="running", started_at=utcnow())
        ar = ActiveRun(run=run, pipeline=pipeline, nodes=nodes, elements=elements)
        self._runs[run_id] = ar
        return ar

    def _node(self, run_id: str, key: str, spec: StepSpec, row: Any) -> Node:
        if row is None:
            return Node(key=key, spec=spec, row_id=self.store.create_step(run_id, key))
        node = Node(key=key, spec=spec, row_id=row.id, state=row.state, attempts=row.attempts,
                    output_digest=row.output_digest, effects=dict(row.effects), error=row.error)
        if row.state in DONE_STEP:
            node.output = self._decode(row.output, row.output_ref, key)
        elif row.state == "running":  # in flight when the last engine died: run it again
            node.state = "pending"
            self.store.update_step(row.id, state="pending")
        return node

    # -- scheduling -------------------------------------------------------------------------
    def _all(self, ar: ActiveRun) -> list[Node]:
        return list(ar.nodes.values()) + [e for es in ar.elements.values() for e in es]

    def _advance(self, ar: ActiveRun) -> None:
        p, now = ar.pipeline, time.time()
        for name in p.order:
            node = ar.nodes[name]
            if node.state in DONE_STEP or node.state in _STOPPED or node.inflight:
                continue
            ups = [ar.nodes[u] for u in p.upstream(name)]
            if any(u.state in _STOPPED for u in ups):
                why = "a gate upstream is closed" if all(u.state in DONE_STEP or u.state ==
                    "skipped" for u in ups) else "an upstream step did not succeed"
                self._set(node, "skipped", error=why)
                continue
            if not all(u.state in DONE_STEP for u in ups):
                continue
            if node.spec.map_over:
                self._advance_map(ar, node, now)
            elif node.not_before <= now:
                self._submit(ar, node)
        nodes = self._all(ar)
        if any(n.inflight for n in nodes):
            return
        if not all(n.state in DONE_STEP or n.state in _STOPPED for n in ar.nodes.values()):
            return
        failed = [n for n in nodes if n.state in ("failed", "cancelled")]
        if not failed:  # skipped steps here are behind a closed gate
            self._finish_run(ar.run.id, "succeeded", None)
        else:
            err = "; ".join(f"step {n.key!r} {n.state}: {n.error}" for n in failed[:3])
            self._finish_run(ar.run.id, "failed", err)

    def _advance_map(self, ar: ActiveRun, node: Node, now: float) -> None:
        name, spec = node.key, node.spec
        items = ar.nodes[spec.map_over or ""].output
        if name not in ar.elements:
            if not isinstance(items, list):
                what = "not JSON" if isinstance(items, Opaque) else \
                    f"a {type(items).__name__}, not a list"
                self._set(node, "failed", error=f"maps over {spec.map_over!r}, whose output is "
                          f"{what}; a mapped step needs a JSON list")
                return
            self._set(node, "running", started_at=utcnow())
            ar.elements[name] = [Node(key=f"{name}[{i}]", spec=spec,
                                      row_id=self.store.create_step(ar.run.id, f"{name}[{i}]"))
                                 for i in range(len(items))]
        elems = ar.elements[name]
        if isinstance(items, list) and len(elems) < len(items):  # a crash cut the expansion
            elems += [Node(key=f"{name}[{i}]", spec=spec,
                           row_id=self.store.create_step(ar.run.id, f"{name}[{i}]"))
                      for i in range(len(elems), len(items))]
        for i, e in enumerate(elems):
            e.item = items[i]
            if e.state == "pending" and not e.inflight and e.not_before <= now:
                self._submit(ar, e)
        if any(e.inflight or e.state == "pending" for e in elems):
            return
        if all(e.state in DONE_STEP for e in elems):
            self._succeed(node, [e.output for e in elems])
        else:
            bad = [e.key for e in elems if e.state not in DONE_STEP]
            self._set(node, "failed", error=f"elements {', '.join(bad[:5])} did not succeed")

    def _inputs(self, ar: ActiveRun, node: Node) -> tuple[dict[str, Any], str]:
        p, spec = ar.pipeline, node.spec
        kwargs: dict[str, Any] = {}
        digests: dict[str, Any] = {}
        for arg, up in p.edges[spec.name].items():
            if spec.map_over == up:
                kwargs[arg] = node.item
                digests[arg] = _codec.digest(node.item)
            else:
                kwargs[arg] = ar.nodes[up].output
                digests[arg] = ar.nodes[up].output_digest
        sig = spec.signature.parameters
        for name in p.step_params[spec.name]:
            if name in ar.run.params:
                kwargs[name] = ar.run.params[name]
            elif name in p.params:
                kwargs[name] = p.params[name]
            else:
                kwargs[name] = sig[name].default
            if kwargs[name] is LOCAL:  # a default only the step's own code knows (the code
                del kwargs[name]       # digest in the cache key covers it)
                digests[name] = "local-default"
                continue
            digests[name] = _codec.digest(kwargs[name])
        return kwargs, _sha(json.dumps(digests, sort_keys=True, default=repr))

    def _submit(self, ar: ActiveRun, node: Node) -> None:
        kwargs, inputs_digest = self._inputs(ar, node)
        spec = node.spec
        cache_key = _sha(json.dumps([spec.code_hash, spec.kind, spec.config, inputs_digest],
                                    sort_keys=True, default=repr))
        node.inflight = True
        self._pool.submit(self._work, ar, node, kwargs, inputs_digest, cache_key)

    # -- one attempt (pool thread) ----------------------------------------------------------
    def _work(self, ar: ActiveRun, node: Node, kwargs: dict[str, Any], inputs_digest: str,
              cache_key: str) -> None:
        spec, run = node.spec, ar.run
        try:
            # A run started with no_cache takes nothing from the cache; what it computes is
            # stored as usual, so the runs after it can reuse it.
            if spec.cache and not node.effects and not run.no_cache:
                hit = self.store.find_cached(run.project, cache_key)
                if hit is not None:
                    value = self._decode(hit.output, hit.output_ref, node.key)
                    self._set(node, "cached", inputs_digest=inputs_digest, cache_key=cache_key,
                              output=hit.output, output_ref=hit.output_ref,
                              output_digest=hit.output_digest, cached_from=hit.id,
                              finished_at=utcnow())
                    node.output, node.output_digest = value, hit.output_digest
                    return
            node.attempts += 1
            self._set(node, "running", attempts=node.attempts, inputs_digest=inputs_digest,
                      cache_key=cache_key, started_at=utcnow(), error=None, traceback=None,
                      log_tail=None)
            trusted = not isinstance(spec.fn, SandboxedCall)
            ctx = StepContext(project=run.project, run_id=run.id, step=node.key,
                              attempt=node.attempts, effects=node.effects,
                              platform=self.platform if trusted else None,
                              actor=run.created_by, cancelled=node.cancel,
                              _record=lambda k, v: self._record_effect(node, k, v))
            value = self._execute(spec, kwargs, ctx, node.cancel)
            self._succeed(node, value)
        except StepCancelled:
            if not self._stopping:  # at shutdown the step stays `running`: resume re-runs it
                self._set(node, "cancelled", error="cancelled", finished_at=utcnow())
        except GateClosed as e:
            self._set(node, "skipped", error=f"gate closed: {e}", finished_at=utcnow())
        except Exception as e:  # noqa: BLE001 - a failed attempt, maybe retried
            self._failed_attempt(node, e)
        finally:
            node.inflight = False
            self.wake.set()

    def _execute(self, spec: StepSpec, kwargs: dict[str, Any], ctx: StepContext,
                 cancel: threading.Event) -> Any:
        if isinstance(spec.fn, SandboxedCall):
            if self.sandboxed is None:
                raise StepError("this engine cannot run sandboxed steps")
            return self.sandboxed(spec.fn, kwargs, ctx, spec.timeout_s, cancel)
        opaque = sorted(a for a, v in kwargs.items() if _codec.opaque_digests(v))
        if opaque:
            raise StepError(f"step {spec.name!r} is a built-in {spec.kind!r} step and takes JSON "
                            f"only, but its input {', '.join(opaque)} is the pickled output of a "
                            "Python step; return JSON from that step (dicts, lists, strings, "
                            "numbers, booleans, None, bytes)")
        # modelyard's own code (a built-in kind or a built-in pipeline's step): in the server
        args = {**kwargs, "ctx": ctx} if spec.wants_ctx else kwargs
        return run_in_thread(spec.fn, args, spec.timeout_s, cancel)

    def _record_effect(self, node: Node, key: str, value: Any) -> None:
        json.dumps(value)  # effects must be JSON: they are replayed after a crash
        self.store.update_step(node.row_id, effects={**node.effects, key: value})

    def _failed_attempt(self, node: Node, e: Exception) -> None:
        spec = node.spec
        if isinstance(e, StepTimeout):
            msg = f"timed out after {spec.timeout_s:g}s (attempt {node.attempts})"
        elif isinstance(e, StepError):
            msg = str(e)
        else:
            msg = f"{type(e).__name__}: {e}"
        # What the user needs to debug it, kept with the step (of its last failed attempt)
        fields: dict[str, Any] = {}
        if isinstance(e, StepError):
            fields = {"traceback": e.remote_traceback or None, "log_tail": e.log_tail or None}
        elif not isinstance(e, StepTimeout):  # a built-in step: modelyard's own code
            fields = {"traceback": "".join(traceback.format_exception(e))[-8000:]}
        if node.attempts <= spec.retries:
            delay = spec.backoff_s * (2 ** (node.attempts - 1))
            node.not_before = time.time() + delay
            self._set(node, "pending", error=f"{msg}; retrying in {delay:g}s",
                      next_attempt_at=utcnow() + timedelta(seconds=delay), **fields)
        else:
            self._set(node, "failed", error=msg, finished_at=utcnow(), **fields)

    def _succeed(self, node: Node, value: Any) -> None:
        output, ref, digest, value = self._encode(value)
        self._set(node, "succeeded", output=output, output_ref=ref, output_digest=digest,
                  finished_at=utcnow(), error=None)
        node.output, node.output_digest = value, digest

    def _set(self, node: Node, state: str, **fields: Any) -> None:
        self.store.update_step(node.row_id, state=state, **fields)
        node.state = state
        if "error" in fields:
            node.error = fields["error"]

    # -- outputs ----------------------------------------------------------------------------
    def _encode(self, value: Any) -> tuple[Any, str | None, str, Any]:
        """(JSON output, CAS ref, digest, the value as later readers will see it).

        Small plain JSON goes into the database; JSON with bytes (or a big document) into the
        content store as tagged JSON; a sandboxed step's pickle is already there (`Opaque`).
        """
        if isinstance(value, Opaque):
            return None, value.digest, value.digest, value
        try:
            text = _codec.encode(value)
        except _codec.NotJson as e:
            raise StepError(f"the step's output cannot be stored: {e}; return JSON (dicts, "
                            "lists, strings, numbers, booleans, None, bytes)") from None
        if len(text) <= MAX_JSON_OUTPUT and _codec.is_plain(text):
            decoded = json.loads(text)
            return decoded, None, _sha(text), decoded
        stored = self.cas.put(_codec.MAGIC + text.encode())
        return None, stored.digest, stored.digest, value

    def _decode(self, output: Any, ref: str | None, key: str = "") -> Any:
        if not ref:
            return output
        with self.cas.open(ref) as f:
            if f.read(len(_codec.MAGIC)) != _codec.MAGIC:
                return Opaque(ref, key)  # a pickle: bytes for the next sandboxed step only
            return _codec.decode(f.read(), opaque=lambda d: Opaque(d, key))

    # -- ending -----------------------------------------------------------------------------
    def _cancel(self, ar: ActiveRun) -> None:
        ar.cancelling = True
        for n in self._all(ar):
            if n.inflight:
                n.cancel.set()
            elif n.state in ("pending", "running"):
                self._set(n, "cancelled", error="cancelled", finished_at=utcnow())
        if not any(n.inflight for n in self._all(ar)):
            self._finish_run(ar.run.id, "cancelled", "cancelled on request")

    def _finish_run(self, run_id: str, state: str, error: str | None) -> None:
        self.store.update_run(run_id, state=state, error=error, finished_at=utcnow())
        self._runs.pop(run_id, None)
        log.info("pipeline run %s %s", run_id, state)


def _dead(owner: str) -> bool:
    """True when `owner` was an engine process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()
