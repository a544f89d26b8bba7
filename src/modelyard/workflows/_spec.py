"""A pipeline's definition as JSON: written in the sandbox, checked and rebuilt by the server.

`describe` runs inside the sandbox, on the `Pipeline` the user's package built (the DSL has
validated it there). The server treats what comes back as hostile input: `parse` checks its
shape and bounds, and `rebuild` turns it into a `Pipeline` again without any user code: each
built-in kind becomes its server-side implementation from its config, each Python step a
`SandboxedCall` naming (package digest, entry, step), which the engine runs in the sandbox.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.core.errors import InvalidArgument
from modelyard.workflows.dsl import CTX, Pipeline, StepSpec

_NAME = r"^[A-Za-z0-9_.-]{1,100}$"
MAX_STEPS = 500
LIMIT_KEYS = ("memory_mb", "processes", "open_files", "disk_mb")
# Ceilings of what a step may ask for; the defaults are in `_runner.DEFAULT_LIMITS`.
MAX_LIMITS = {"memory_mb": 65_536, "processes": 4096, "open_files": 65_536, "disk_mb": 102_400}


class _LocalDefault:
    """A parameter default that is not JSON: the step's own code applies it in the sandbox."""

    def __repr__(self) -> str:
        return "<default in the sandbox>"


LOCAL = _LocalDefault()


# -- in the sandbox -----------------------------------------------------------------------------
def describe(pipeline: Pipeline) -> dict[str, Any]:
    """The JSON document of a validated pipeline; raises InvalidArgument for what JSON cannot
    carry (pipeline params and kind configs must be JSON)."""
    _json(pipeline.params, f"pipeline {pipeline.name!r}: params")
    steps = []
    for name in pipeline.order:
        s = pipeline.steps[name]
        _json(s.config, f"step {name!r}: config")
        sig = s.signature.parameters
        defaults: dict[str, Any] = {}
        local: list[str] = []
        for p in pipeline.step_params[name]:
            d = sig[p].default
            if d is inspect.Parameter.empty:
                continue
            try:
                json.dumps(d)
                defaults[p] = d
            except (TypeError, ValueError):
                if s.kind != "python":
                    raise InvalidArgument(f"step {name!r}: the default of {p!r} is not JSON",
                                          {"steps": [name]}) from None
                local.append(p)
        fn = s.fn
        steps.append({
            "name": name, "kind": s.kind, "module": str(getattr(fn, "__module__", "") or ""),
            "qualname": str(getattr(fn, "__qualname__", "") or ""),
            "inputs": dict(pipeline.edges[name]), "params": list(pipeline.step_params[name]),
            "defaults": defaults, "local_defaults": local, "wants_ctx": s.wants_ctx,
            "map_over": s.map_over, "retries": s.retries, "backoff_s": s.backoff_s,
            "timeout_s": s.timeout_s, "cache": s.cache, "idempotent": s.idempotent,
            "config": s.config, "limits": dict(s.limits),
        })
    return {"name": pipeline.name, "description": pipeline.description,
            "params": pipeline.params, "steps": steps}


def _json(value: Any, what: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"{what} must be JSON (numbers, strings, lists, dicts): {e}") from None


# -- in the server ------------------------------------------------------------------------------
class StepDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    kind: str = Field(pattern=r"^[a-z_]{1,50}$")
    module: str = Field("", max_length=300)
    qualname: str = Field("", max_length=300)
    inputs: dict[str, str] = Field(default_factory=dict, max_length=MAX_STEPS)
    params: list[str] = Field(default_factory=list, max_length=500)
    defaults: dict[str, Any] = Field(default_factory=dict)
    local_defaults: list[str] = Field(default_factory=list, max_length=500)
    wants_ctx: bool = False
    map_over: str | None = None
    retries: int = Field(0, ge=0, le=100)
    backoff_s: float = Field(1.0, ge=0, le=86_400)
    timeout_s: float | None = Field(None, gt=0, le=7 * 86_400)
    cache: bool = True
    idempotent: bool = False
    config: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, int] = Field(default_factory=dict)


class PipelineDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    description: str = Field("", max_length=20_000)
    params: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepDoc] = Field(max_length=MAX_STEPS)


def parse(raw: Any) -> PipelineDoc:
    """The checked document; raises InvalidArgument naming what is wrong with it."""
    try:
        doc = PipelineDoc.model_validate(raw)
    except ValidationError as e:
        raise InvalidArgument(f"the pipeline definition the package produced is malformed: "
                              f"{str(e)[:800]}") from None
    for s in doc.steps:
        names = [*s.inputs, *s.params]
        if any(k != v for k, v in s.inputs.items()) or CTX in names or \
                len(set(names)) != len(names) or not set(s.local_defaults) <= set(s.params) or \
                not set(s.defaults) <= set(s.params) or not all(n.isidentifier() for n in names):
            raise InvalidArgument(f"step {s.name!r}: its inputs and parameters do not match "
                                  "one another", {"steps": [s.name]})
        bad = {k: v for k, v in s.limits.items()
               if k not in MAX_LIMITS or not 1 <= v <= MAX_LIMITS[k]}
        if bad:
            raise InvalidArgument(f"step {s.name!r}: limits {bad} are out of range; allowed: "
                                  + ", ".join(f"{k} 1..{v}" for k, v in MAX_LIMITS.items()),
                                  {"steps": [s.name]})
    return doc


class SandboxedCall:
    """A Python step of a package: what the engine runs in the sandbox. Calling it here is a
    bug: the server never runs user code."""

    def __init__(self, package: str, entry: str, doc: StepDoc) -> None:
        self.package, self.entry, self.step = package, entry, doc.name
        self.module, self.qualname = doc.module, doc.qualname
        self.wants_ctx = doc.wants_ctx
        self.limits = dict(doc.limits)
        params = [inspect.Parameter(CTX, inspect.Parameter.KEYWORD_ONLY)] if doc.wants_ctx else []
        params += [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY) for a in doc.inputs]
        params += [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY,
                                     default=doc.defaults.get(p, LOCAL if p in
                                                              doc.local_defaults else
                                                              inspect.Parameter.empty))
                   for p in doc.params]
        self.__signature__ = inspect.Signature(params)
        self.__name__ = self.__qualname__ = doc.name

    @property
    def code_hash(self) -> str:
        # The package digest is the code's identity: an edited package is new code, and a
        # cached result of the old one is never reused for it.
        return hashlib.sha256(f"{self.package}:{self.entry}:{self.step}".encode()).hexdigest()

    def __call__(self, **_: Any) -> Any:
        raise RuntimeError(f"step {self.step!r} runs in the sandbox only")

    def __repr__(self) -> str:
        return f"<sandboxed step {self.step} of package {self.package[:12]}>"


def rebuild(doc: PipelineDoc, package: str, entry: str) -> Pipeline:
    """The pipeline the server runs, from a checked document (the DSL validates it again)."""
    from modelyard.workflows import kinds

    steps: list[StepSpec] = []
    for s in doc.steps:
        opts = {"map_over": s.map_over, "retries": s.retries, "backoff_s": s.backoff_s,
                "timeout_s": s.timeout_s, "cache": s.cache, "idempotent": s.idempotent}
        if s.kind == "python":
            steps.append(StepSpec(name=s.name, fn=SandboxedCall(package, entry, s), kind="python",
                                  config=s.config, limits=dict(s.limits), **opts))  # type: ignore[arg-type]
        else:
            steps.append(kinds.from_spec(s.kind, s.name, list(s.inputs), s.params, s.defaults,
                                         s.config, **opts))
    return Pipeline(doc.name, steps, params=doc.params, description=doc.description)


def definition_hash(definition: dict[str, Any]) -> str:
    raw = json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()
