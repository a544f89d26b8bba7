"""Pipelines in Python: `@step` functions whose parameters name upstream steps, and `Pipeline`.

    @step
    def load(n: int) -> list[int]:            # `n` is a pipeline parameter
        return list(range(n))

    @step(map_over="load")
    def square(load: int) -> int:             # runs once per element of `load`'s list
        return load * load

    @step(retries=2, timeout_s=30)
    def total(square: list[int]) -> int:      # gets every element's result, in order
        return sum(square)

    pipeline = Pipeline("squares", [load, square, total], params={"n": 10})

A parameter named like another step receives that step's output; a parameter named `ctx`
receives the `StepContext` (project, run id, side-effect records, an API client); any other
parameter is a pipeline parameter (a run's `params`, else `Pipeline(params=...)`, else the
function's default). `Pipeline(...)` validates the DAG at once and raises InvalidArgument naming
the offending steps: cycles, inputs nobody provides, annotations that do not match.

Such a module is a code package: `modelyard pipeline register DIR --entry module:pipeline`
uploads it; the server builds the pipeline inside the sandbox and runs each Python step there,
in a fresh process per attempt (never in the server). Outputs travel as JSON (bytes allowed);
anything else is pickled in the sandbox and handed, as bytes, to the next Python step only.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelyard.core.errors import InvalidArgument
from modelyard.core.ids import check_name

EXECUTORS = ("process", "thread")
CTX = "ctx"
_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class StepSpec:
    """One step: the function, how it is wired, and how the engine runs it."""

    name: str
    fn: Callable[..., Any]
    kind: str = "python"
    map_over: str | None = None
    retries: int = 0
    backoff_s: float = 1.0
    timeout_s: float | None = None
    cache: bool = True
    idempotent: bool = False
    executor: str = "process"  # kept for old definitions: user steps always run sandboxed
    config: dict[str, Any] = field(default_factory=dict)  # a kind's settings, part of the hash
    limits: dict[str, int] = field(default_factory=dict)  # memory_mb, processes, ... (sandbox)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.fn)

    @property
    def arg_names(self) -> list[str]:
        return list(self.signature.parameters)

    @property
    def wants_ctx(self) -> bool:
        return CTX in self.signature.parameters

    @property
    def code_hash(self) -> str:
        own = getattr(self.fn, "code_hash", None)  # a packaged step: its package's digest
        if isinstance(own, str):
            return own
        try:
            src = textwrap.dedent(inspect.getsource(self.fn))
        except (OSError, TypeError):  # e.g. a callable object: its class and state
            src = f"{type(self.fn).__module__}.{type(self.fn).__qualname__}:{self.fn!r}"
        return hashlib.sha256(src.encode()).hexdigest()

    def hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # noqa: BLE001 - unresolved annotations are treated as Any
            return {}


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    map_over: str | None = None,
    retries: int = 0,
    backoff_s: float = 1.0,
    timeout_s: float | None = None,
    cache: bool = True,
    idempotent: bool = False,
    executor: str = "process",
    kind: str = "python",
    config: dict[str, Any] | None = None,
    memory_mb: int | None = None,
    processes: int | None = None,
    open_files: int | None = None,
    disk_mb: int | None = None,
) -> Any:
    """Make a function a pipeline step (usable bare, `@step`, or configured, `@step(...)`).

    The step runs in the sandbox, a fresh process per attempt, limited to `memory_mb`,
    `processes`, `open_files` and `disk_mb` (server defaults when not given) and to `timeout_s`
    of wall time. `executor` is accepted for old pipelines and means nothing any more.
    """
    limits = {k: v for k, v in (("memory_mb", memory_mb), ("processes", processes),
                                ("open_files", open_files), ("disk_mb", disk_mb))
              if v is not None}

    def wrap(f: Callable[..., Any]) -> StepSpec:
        if executor not in EXECUTORS:
            raise InvalidArgument(f"step {f.__name__!r}: executor must be one of {EXECUTORS}")
        if retries < 0 or backoff_s < 0 or (timeout_s is not None and timeout_s <= 0):
            raise InvalidArgument(f"step {f.__name__!r}: retries and backoff_s must be >= 0 and "
                                  "timeout_s > 0")
        if any(not isinstance(v, int) or v < 1 for v in limits.values()):
            raise InvalidArgument(f"step {f.__name__!r}: limits must be positive integers")
        return StepSpec(name=name or f.__name__, fn=f, kind=kind,
                        map_over=map_over, retries=retries, backoff_s=backoff_s,
                        timeout_s=timeout_s, cache=cache, idempotent=idempotent,
                        executor=executor, config=dict(config or {}), limits=limits)

    return wrap(fn) if fn is not None else wrap


class Pipeline:
    """A validated DAG of steps plus default parameters; `definition()` is what gets hashed."""

    def __init__(self, name: str, steps: list[StepSpec], params: dict[str, Any] | None = None,
                 description: str = "") -> None:
        self.name = check_name(name, "pipeline name")
        self.description = description
        self.params = dict(params or {})
        self.steps: dict[str, StepSpec] = {}
        for s in steps:
            if not isinstance(s, StepSpec):
                raise InvalidArgument(f"pipeline {name!r}: {s!r} is not a @step function")
            if s.name in self.steps:
                raise InvalidArgument(f"pipeline {name!r}: two steps are named {s.name!r}",
                                      {"steps": [s.name]})
            check_name(s.name, "step name")
            self.steps[s.name] = s
        self.edges: dict[str, dict[str, str]] = {}  # step -> {arg: upstream step}
        self.step_params: dict[str, list[str]] = {}  # step -> pipeline params it reads
        self._wire()
        self.order = self._topological_order()
        self._check_types()

    # -- validation -----------------------------------------------------------------------
    def _wire(self) -> None:
        missing: dict[str, list[str]] = {}
        for s in self.steps.values():
            ups: dict[str, str] = {}
            params: list[str] = []
            for arg, p in s.signature.parameters.items():
                if arg == CTX:
                    continue
                if arg in self.steps:
                    ups[arg] = arg
                elif arg in self.params or p.default is not _EMPTY:
                    params.append(arg)
                else:
                    missing.setdefault(s.name, []).append(arg)
            if s.map_over is not None and s.map_over not in ups:
                missing.setdefault(s.name, []).append(f"map_over={s.map_over}")
            self.edges[s.name] = ups
            self.step_params[s.name] = params
        if missing:
            desc = "; ".join(f"step {k!r} needs {', '.join(v)}" for k, v in missing.items())
            raise InvalidArgument(
                f"pipeline {self.name!r} has missing inputs: {desc}. Name an upstream step, add "
                "a pipeline parameter (Pipeline(params=...)) or give the argument a default",
                {"steps": sorted(missing), "missing": missing},
            )

    def _topological_order(self) -> list[str]:
        indeg = {n: len(set(ups.values())) for n, ups in self.edges.items()}
        down: dict[str, list[str]] = {n: [] for n in self.steps}
        for n, ups in self.edges.items():
            for u in set(ups.values()):
                down[u].append(n)
        ready = [n for n in self.steps if indeg[n] == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for d in down[n]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
        if len(order) != len(self.steps):
            cyclic = sorted(n for n in self.steps if n not in order)
            raise InvalidArgument(
                f"pipeline {self.name!r} has a cycle through steps {', '.join(cyclic)}: a step "
                "cannot depend on its own output, directly or through others",
                {"steps": cyclic},
            )
        return order

    def output_type(self, name: str) -> Any:
        s = self.steps[name]
        ret = s.hints().get("return", Any)
        return list[ret] if s.map_over else ret  # type: ignore[valid-type]

    def _check_types(self) -> None:
        bad: list[str] = []
        names: set[str] = set()
        for s in self.steps.values():
            hints = s.hints()
            for arg, up in self.edges[s.name].items():
                want = hints.get(arg, Any)
                have = self.output_type(up)
                if s.map_over == up:
                    have = _element_type(have)
                    if have is None:
                        names |= {s.name, up}
                        bad.append(f"{s.name!r} maps over {up!r}, which does not return a list")
                        continue
                if not _compatible(have, want):
                    names |= {s.name, up}
                    bad.append(f"{s.name!r} takes {arg}: {_tname(want)} but {up!r} returns "
                               f"{_tname(have)}")
        if bad:
            steps = sorted(names)
            raise InvalidArgument(f"pipeline {self.name!r} has type mismatches: {'; '.join(bad)}",
                                  {"steps": steps, "mismatches": bad})

    # -- definition -----------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "steps": [
                {"name": n, "kind": self.steps[n].kind, "code_hash": self.steps[n].code_hash,
                 "inputs": self.edges[n], "params": self.step_params[n],
                 "map_over": self.steps[n].map_over, "config": self.steps[n].config,
                 "retries": self.steps[n].retries, "timeout_s": self.steps[n].timeout_s,
                 "cache": self.steps[n].cache, "executor": self.steps[n].executor}
                for n in self.order
            ],
        }

    def definition_hash(self) -> str:
        raw = json.dumps(self.definition(), sort_keys=True, default=str).encode()
        return hashlib.sha256(raw).hexdigest()

    def upstream(self, name: str) -> set[str]:
        return set(self.edges[name].values())


def _element_type(t: Any) -> Any:
    if t is Any:
        return Any
    origin = typing.get_origin(t)
    if origin in (list, tuple) or t in (list, tuple):
        args = typing.get_args(t)
        return args[0] if args else Any
    return None


def _compatible(have: Any, want: Any) -> bool:
    if have is Any or want is Any or have == want:
        return True
    w_origin, h_origin = typing.get_origin(want), typing.get_origin(have)
    if w_origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_compatible(have, w) for w in typing.get_args(want))
    if h_origin is not None or w_origin is not None:
        if (h_origin or have) != (w_origin or want):
            return False
        ha, wa = typing.get_args(have), typing.get_args(want)
        return not ha or not wa or (len(ha) == len(wa) and all(map(_compatible, ha, wa)))
    if want is float and have is int:
        return True
    return isinstance(have, type) and isinstance(want, type) and issubclass(have, want)


def _tname(t: Any) -> str:
    if typing.get_origin(t) is None and isinstance(t, type):
        return t.__name__
    return str(t).replace("typing.", "")
