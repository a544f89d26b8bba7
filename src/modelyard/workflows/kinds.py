"""Component step kinds: thin adapters that call other services through `ctx.platform`.

Each factory returns a `StepSpec` running in a thread of the server process (it needs the
platform). Its arguments name upstream steps or pipeline parameters, exactly like a `@step`
function's; its settings (`config`) are part of the pipeline's definition hash.

A packaged pipeline calls these factories in the sandbox, where only the kind, its wiring and
its config are kept; the server builds the step again from those (`from_spec`) with its own
implementation from `BODIES`, so user code never stands in for a built-in kind.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from modelyard.core.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.core.ids import utcnow
from modelyard.workflows.context import GateClosed, StepContext
from modelyard.workflows.dsl import StepSpec

Json = dict[str, Any]
POLL_S = 0.5
log = logging.getLogger("modelyard.workflows")


def _kind(kind: str, name: str, body: Callable[..., Any], inputs: dict[str, Any],
          returns: Any, config: Json, defaults: Json | None = None, **opts: Any) -> StepSpec:
    """A step named `name` whose arguments are `ctx` plus `inputs` (arg -> type)."""

    def run(ctx: StepContext, **kwargs: Any) -> Any:
        ctx.require_platform()
        return body(ctx, config, **kwargs)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=StepContext)]
    defaults = defaults or {}
    params += [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY, annotation=t,
                                 default=defaults.get(a, inspect.Parameter.empty))
               for a, t in inputs.items()]
    run.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    run.__annotations__ = {"ctx": StepContext, **inputs, "return": returns}
    run.__name__ = run.__qualname__ = name
    run.__wrapped__ = body  # type: ignore[attr-defined]  # the code hash is the adapter's source
    opts.setdefault("executor", "thread")
    return StepSpec(name=name, fn=run, kind=kind, config=config, **opts)


def _actor(ctx: StepContext) -> str:
    return ctx.actor


# -- datasets ---------------------------------------------------------------------------------
def import_dataset(name: str, dataset: str, source: str = "sklearn:digits",
                   only_if_absent: bool = True) -> StepSpec:
    """Import a built-in source into `dataset` (skipped when it already has commits)."""
    return _kind("dataset_import", name, _import_dataset, {}, Json,
                 {"dataset": dataset, "source": source, "only_if_absent": only_if_absent},
                 cache=False, idempotent=True)


def _import_dataset(ctx: StepContext, cfg: Json) -> Json:
    from modelyard.datasets.models import ImportRequest

    ds = ctx.platform.datasets
    if cfg["only_if_absent"]:
        try:
            head = ds.get_version(ctx.project, cfg["dataset"])
            return {"dataset": cfg["dataset"], "version": head.version, "imported": False}
        except (NotFound, FailedPrecondition):
            pass
    commit = ds.import_builtin(ctx.project, ImportRequest(name=cfg["dataset"],
                                                          source=cfg["source"]), _actor(ctx))
    return {"dataset": cfg["dataset"], "version": commit.version, "imported": True}


def dataset_snapshot(name: str, dataset: str, after: str | None = None, seed: int = 0,
                     fractions: dict[str, float] | None = None) -> StepSpec:
    """A training snapshot of the dataset's newest commit (after step `after`, if given)."""
    inputs = {after: Any} if after else {}
    return _kind("dataset_snapshot", name, _snapshot, inputs, Json,
                 {"dataset": dataset, "seed": seed, "fractions": fractions}, idempotent=True,
                 cache=False)  # the newest commit changes under the same inputs


def _snapshot(ctx: StepContext, cfg: Json, **_: Any) -> Json:
    from modelyard.datasets.models import SnapshotRequest

    req = SnapshotRequest(seed=cfg["seed"], **({"fractions": cfg["fractions"]}
                                              if cfg["fractions"] else {}))
    snap = ctx.platform.datasets.create_snapshot(ctx.project, cfg["dataset"], req, _actor(ctx))
    while snap.status == "pending":
        if ctx.cancelled.wait(POLL_S):
            raise FailedPrecondition("cancelled")
        snap = ctx.platform.datasets.get_snapshot(ctx.project, snap.id)
    if snap.status != "ready":
        raise FailedPrecondition(f"snapshot {snap.id} failed: {snap.error}")
    try:
        ctx.platform.datasets.record_use(ctx.project, snap.id, "pipeline_run", ctx.run_id,
                                         "input")
    except Exception:  # lineage is best effort, as in _edge
        log.warning("lineage of snapshot %s not recorded", snap.id, exc_info=True)
    return {"snapshot": snap.id, "dataset": snap.dataset, "version": snap.version,
            "hash": snap.hash}


# -- training ---------------------------------------------------------------------------------
def training_job(name: str, snapshot: str, trainer: str, hyperparameters: Json | None = None,
                 timeout_s: int = 3600) -> StepSpec:
    """Submit a training job on the snapshot from step `snapshot` and wait for it.

    The job id is recorded before waiting: a resumed step re-attaches to the same job.
    Pipeline parameter `hyperparameters` (if the pipeline has one) overrides the default.
    """
    return _kind("training_job", name, _train, {snapshot: Json, "hyperparameters": Json}, Json,
                 {"trainer": trainer, "snapshot_from": snapshot, "timeout_s": timeout_s,
                  "default_hyperparameters": hyperparameters or {}},
                 defaults={"hyperparameters": {}})


def _train(ctx: StepContext, cfg: Json, hyperparameters: Json | None = None, **ups: Any) -> Json:
    from modelyard.training.models import JobSpec

    training = ctx.platform.training
    snap = ups[cfg["snapshot_from"]]
    spec = JobSpec(trainer=cfg["trainer"], dataset_snapshot=snap["snapshot"],
                   hyperparameters={**cfg["default_hyperparameters"], **(hyperparameters or {})},
                   timeout_s=cfg["timeout_s"], name=f"{ctx.step}-{ctx.run_id[-8:]}")
    job_id = ctx.effect("job_id", lambda: training.submit(ctx.project, _actor(ctx), spec).id)
    _edge(ctx, "pipeline_run", ctx.run_id, "job", job_id, "started")
    while True:
        job = training.get(ctx.project, job_id)
        if job.state.terminal:
            break
        if ctx.cancelled.wait(POLL_S):
            training.cancel(ctx.project, job_id, f"pipeline run {ctx.run_id} was cancelled")
            raise FailedPrecondition("cancelled")
    if job.state.value != "succeeded":
        raise FailedPrecondition(f"training job {job_id} {job.state.value}: {job.message}")
    mv = job.model_version or {}
    return {"job_id": job_id, "run_id": job.run_id, "model": mv.get("model"),
            "version": mv.get("version"), "metrics": mv.get("metrics", {})}


def hpo_study(name: str, snapshot: str, trainer: str, search_space: Json, metric: str,
              direction: str = "maximize", n_trials: int = 4, max_parallel: int = 2,
              hyperparameters: Json | None = None, timeout_s: int = 3600) -> StepSpec:
    """A small HPO study on the snapshot from step `snapshot`; waits for it and returns its
    best trial's model version (`{"model", "version", ...}`, like a training step's output).

    The study id is recorded before waiting: a resumed step re-attaches to the same study.
    """
    return _kind("hpo_study", name, _hpo,
                 {snapshot: Json, "hyperparameters": Json, "search_space": Json}, Json,
                 {"snapshot_from": snapshot, "trainer": trainer, "search_space": search_space,
                  "metric": metric, "direction": direction, "n_trials": n_trials,
                  "max_parallel": max_parallel, "hyperparameters": hyperparameters or {},
                  "timeout_s": timeout_s},
                 defaults={"hyperparameters": {}, "search_space": {}})


def _hpo(ctx: StepContext, cfg: Json, hyperparameters: Json | None = None,
         search_space: Json | None = None, **ups: Any) -> Json:
    # Pipeline parameters `search_space` and `hyperparameters` (if the pipeline has them)
    # override the step's own; a searched parameter is never also fixed.
    space = search_space or cfg["search_space"]
    fixed = {k: v for k, v in {**cfg["hyperparameters"], **(hyperparameters or {})}.items()
             if k not in space}
    hpo = getattr(ctx.platform, "hpo", None)
    if hpo is None:
        raise FailedPrecondition("HPO studies need the hpo component, which this server does not "
                                 "have; use a training_job step instead")
    from modelyard.hpo.models import StudySpec

    spec = StudySpec.model_validate({
        "name": f"{ctx.step}-{ctx.run_id[-10:]}".replace("_", "-"),
        "trainer": cfg["trainer"], "dataset_snapshot": ups[cfg["snapshot_from"]]["snapshot"],
        "search_space": space,
        "objective": {"metric": cfg["metric"], "direction": cfg["direction"]},
        "n_trials": cfg["n_trials"], "max_parallel": cfg["max_parallel"],
        "hyperparameters": fixed, "timeout_s": cfg["timeout_s"]})
    study_id = ctx.effect("study_id", lambda: hpo.create(ctx.project, _actor(ctx), spec).id)
    _edge(ctx, "pipeline_run", ctx.run_id, "study", study_id, "started")
    while True:
        study = hpo.get(ctx.project, study_id)
        if study.state.terminal:
            break
        if ctx.cancelled.wait(POLL_S):
            hpo.stop_study(ctx.project, study_id, _actor(ctx))
            raise FailedPrecondition("cancelled")
    mv = study.best_model_version or {}
    if not mv:
        raise FailedPrecondition(f"study {study_id} ended {study.state.value} without a best "
                                 f"model version: {study.message}")
    best = study.best
    return {"study_id": study_id, "model": mv.get("model"), "version": mv.get("version"),
            "metrics": mv.get("metrics", {}), "best_params": best.params if best else {},
            "best_value": best.value if best else None, "job_id": best.job_id if best else None}


# -- registry ---------------------------------------------------------------------------------
def model_version(name: str, job: str) -> StepSpec:
    """The model version a training step's job registered (`{"model", "version"}`)."""
    return _kind("model_version", name, _model_version, {job: Json}, Json, {"job_from": job})


def _model_version(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    out = ups[cfg["job_from"]]
    if not out.get("model") or not out.get("version"):
        raise FailedPrecondition(f"job {out.get('job_id')} registered no model version; its "
                                 "trainer must call save_model")
    mv = ctx.platform.registry.get_version(ctx.project, out["model"], int(out["version"]))
    _edge(ctx, "pipeline_run", ctx.run_id, "model_version", mv.ref, "produced")
    return {"model": mv.model, "version": mv.version, "metrics": dict(mv.metrics)}


def register_model(name: str, source: str, model: str, framework: str = "onnx",
                   preprocessing: Json | None = None) -> StepSpec:
    """Register the next version of `model` from step `source`'s output, which is
    `{"artifacts": {file name: bytes}, "metrics": {...}}` (metrics optional).

    The new version is recorded as the step's side effect before it returns: a step resumed
    after a crash finds it and never registers a second one. A re-run with the same artifacts
    is served from cache (the same version).
    """
    return _kind("model_registration", name, _register, {source: Any}, Json,
                 {"source": source, "model": model, "framework": framework,
                  "preprocessing": preprocessing})


def _register(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    out = ups[cfg["source"]]
    files = out.get("artifacts") if isinstance(out, dict) else None
    if not files or not all(isinstance(b, bytes) for b in files.values()):
        raise FailedPrecondition(f"step {cfg['source']!r} must return {{'artifacts': {{file "
                                 "name: bytes}}, 'metrics': {{...}}}} for a model to register")
    reg = ctx.platform.registry

    def register() -> Json:
        digests = {fn: reg.put_artifact(ctx.project, blob, name=fn, user=_actor(ctx)).digest
                   for fn, blob in files.items()}
        mv = reg.register_version(ctx.project, cfg["model"], artifacts=digests,
                                  framework=cfg["framework"],
                                  preprocessing=cfg["preprocessing"],
                                  metrics=dict(out.get("metrics") or {}), user=_actor(ctx))
        return {"model": mv.model, "version": mv.version}

    made = ctx.effect("registered", register)
    mv = reg.get_version(ctx.project, made["model"], int(made["version"]))
    _edge(ctx, "pipeline_run", ctx.run_id, "model_version", mv.ref, "produced")
    return {"model": mv.model, "version": mv.version, "metrics": dict(mv.metrics)}


def move_alias(name: str, version: str, alias: str = "production",
               after: str | None = None) -> StepSpec:
    """Point `alias` of the model at the version from step `version` (once `after` passed)."""
    inputs: dict[str, Any] = {version: Json, **({after: Any} if after else {})}
    return _kind("alias_move", name, _move_alias, inputs, Json,
                 {"version_from": version, "alias": alias}, idempotent=True, cache=False)


def _move_alias(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    mv = ups[cfg["version_from"]]
    ctx.platform.registry.set_alias(ctx.project, mv["model"], cfg["alias"], int(mv["version"]),
                                    _actor(ctx))
    return {"model": mv["model"], "alias": cfg["alias"], "version": mv["version"]}


def evaluate(name: str, version: str, against: str = "production",
             metric: str = "val_accuracy") -> StepSpec:
    """Compare the candidate's recorded metric with the version `against` points at."""
    return _kind("evaluation", name, _evaluate, {version: Json}, Json,
                 {"version_from": version, "against": against, "metric": metric}, cache=False)


def _evaluate(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    mv = ups[cfg["version_from"]]
    reg = ctx.platform.registry
    cand = reg.get_version(ctx.project, mv["model"], int(mv["version"]))
    try:
        base = reg.resolve(ctx.project, f"{mv['model']}@{cfg['against']}")
    except NotFound:
        base = None
    c = cand.metrics.get(cfg["metric"])
    b = base.metrics.get(cfg["metric"]) if base is not None else None
    better = c is not None and (b is None or float(c) > float(b))
    return {"candidate": c, "baseline": b, "baseline_version": base.version if base else None,
            "better": better, "metric": cfg["metric"]}


# -- serving and metrics ----------------------------------------------------------------------
def deploy(name: str, alias_step: str, deployment: str) -> StepSpec:
    """Create the deployment on `model@alias` from step `alias_step`, or repoint it."""
    return _kind("deployment", name, _deploy, {alias_step: Json}, Json,
                 {"alias_from": alias_step, "deployment": deployment}, idempotent=True,
                 cache=False)


def _deploy(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    from modelyard.serving.models import DeploymentCreate, DeploymentUpdate

    moved = ups[cfg["alias_from"]]
    ref = f"{moved['model']}@{moved['alias']}"
    serving = ctx.platform.serving
    try:
        serving.get(ctx.project, cfg["deployment"])
        dep = serving.update(ctx.project, cfg["deployment"], DeploymentUpdate(model_ref=ref),
                             _actor(ctx))
    except NotFound:
        dep = serving.create(ctx.project, DeploymentCreate(name=cfg["deployment"], model_ref=ref),
                             _actor(ctx))
    _edge(ctx, "pipeline_run", ctx.run_id, "deployment", dep.id, "deployed")
    return {"deployment": dep.name, "model_ref": dep.model_ref}


def canary(name: str, version: str, deployment: str, alias: str = "production",
           percent: int = 10, max_error_rate: float | None = 0.05,
           max_p95_ms: float | None = None, min_requests: int = 20,
           after: str | None = None) -> StepSpec:
    """Canary release of the candidate from step `version` on `deployment`, then promote or
    roll back on live metrics.

    Sends `percent` of requests to the candidate with the serving rollback rule, watches for
    pipeline parameter `canary_observe_s` seconds (default 300), lets serving apply its rule,
    and then either moves `alias` to the candidate and routes every request to `model@alias`
    (promoted) or leaves the stable version serving (rolled back). A deployment that does not
    exist yet is created on the candidate at once: there is nothing to compare with.
    """
    inputs: dict[str, Any] = {version: Json, "canary_observe_s": float,
                              **({after: Any} if after else {})}
    return _kind("canary", name, _canary, inputs, Json,
                 {"version_from": version, "deployment": deployment, "alias": alias,
                  "percent": percent, "rule": {"max_error_rate": max_error_rate,
                                               "max_p95_ms": max_p95_ms,
                                               "min_requests": min_requests}},
                 defaults={"canary_observe_s": 300.0}, cache=False)


def _canary(ctx: StepContext, cfg: Json, canary_observe_s: float = 300.0, **ups: Any) -> Json:
    from modelyard.serving.models import DeploymentCreate, DeploymentUpdate, RollbackRule

    cand = ups[cfg["version_from"]]
    model, version, alias = cand["model"], int(cand["version"]), cfg["alias"]
    serving, registry, name = ctx.platform.serving, ctx.platform.registry, cfg["deployment"]
    ref = f"{model}@{alias}"

    def promote(reason: str) -> Json:
        registry.set_alias(ctx.project, model, alias, version, _actor(ctx))
        try:
            serving.get(ctx.project, name)
            serving.update(ctx.project, name, DeploymentUpdate(model_ref=ref, traffic=None),
                           _actor(ctx))
        except NotFound:
            serving.create(ctx.project, DeploymentCreate(name=name, model_ref=ref), _actor(ctx))
        return {"promoted": True, "model": model, "version": version, "reason": reason}

    try:
        dep = serving.get(ctx.project, name)
        stable = registry.resolve(ctx.project, dep.model_ref).version
    except NotFound:
        return promote("no deployment serving yet: nothing to compare with")
    if stable == version:
        return promote("the candidate already serves")
    split = {str(stable): 100 - cfg["percent"], str(version): cfg["percent"]}
    rule = RollbackRule(window_s=max(1.0, canary_observe_s),
                        **{k: v for k, v in cfg["rule"].items() if v is not None})
    ctx.effect("canary_started", lambda: serving.update(
        ctx.project, name, DeploymentUpdate(traffic=split, rollback=rule), _actor(ctx)).name)
    if ctx.cancelled.wait(canary_observe_s):
        serving.update(ctx.project, name, DeploymentUpdate(traffic=None), _actor(ctx))
        raise FailedPrecondition("cancelled during the canary")
    serving.check_rollbacks()
    dep = serving.get(ctx.project, name)
    if dep.traffic and dep.traffic.get(str(version), 0) == 0:
        events = [e for e in serving.events(ctx.project, name, 20) if e.kind == "rollback"]
        return {"promoted": False, "model": model, "version": version, "stable": stable,
                "reason": events[0].message if events else "rolled back"}
    return promote(f"canary at {cfg['percent']}% held for {canary_observe_s:g}s")


def predict(name: str, deployment_step: str, inputs: list[Any]) -> StepSpec:
    """Send `inputs` through the deployment from step `deployment_step`."""
    return _kind("prediction", name, _predict, {deployment_step: Json}, Json,
                 {"deployment_from": deployment_step, "inputs": inputs}, cache=False)


def _predict(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    dep = ups[cfg["deployment_from"]]["deployment"]
    res = asyncio.run(ctx.platform.serving.predict(ctx.project, dep, cfg["inputs"]))
    return res.model_dump(mode="json")


def query_metrics(name: str, deployment_step: str, metric: str = "count",
                  window_s: float = 600) -> StepSpec:
    """`metric` of the deployment over the last `window_s` seconds (one value)."""
    return _kind("metrics_query", name, _query, {deployment_step: Any}, Json,
                 {"deployment_from": deployment_step, "metric": metric, "window_s": window_s},
                 cache=False)


def _query(ctx: StepContext, cfg: Json, **ups: Any) -> Json:
    dep = ups[cfg["deployment_from"]]
    dep_name = dep["deployment"] if isinstance(dep, dict) and "deployment" in dep else None
    end = utcnow() + timedelta(seconds=1)
    start = end - timedelta(seconds=cfg["window_s"])
    res = ctx.platform.metrics.query(ctx.project, cfg["metric"], start, end,
                                     step_s=cfg["window_s"], deployment=dep_name)
    values = [p.value for s in res.series for p in s.points if p.value is not None]
    total = sum(values) if cfg["metric"] == "count" else (values[-1] if values else None)
    return {"deployment": dep_name, "metric": cfg["metric"], "value": total}


def gate(name: str, source: str, key: str, op: str, threshold: float) -> StepSpec:
    """Pass when `output_of(source)[key] <op> threshold`; otherwise close: every step after it
    is skipped and the run still succeeds."""
    if op not in _OPS:
        raise ValueError(f"gate op must be one of {', '.join(_OPS)}")
    return _kind("gate", name, _gate, {source: Json}, bool,
                 {"source": source, "key": key, "op": op, "threshold": threshold}, cache=False)


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _gate(ctx: StepContext, cfg: Json, **ups: Any) -> bool:
    value = ups[cfg["source"]].get(cfg["key"])
    if isinstance(value, bool):
        value = float(value)
    if value is None or not _OPS[cfg["op"]](float(value), float(cfg["threshold"])):
        raise GateClosed(f"gate {ctx.step!r}: {cfg['key']}={value!r} is not "
                                 f"{cfg['op']} {cfg['threshold']}")
    return True


def _edge(ctx: StepContext, src_kind: str, src_id: str, dst_kind: str, dst_id: str,
          relation: str) -> None:
    """Lineage is best effort: a pipeline step does not fail because an edge was refused."""
    try:
        ctx.platform.registry.add_edge(ctx.project, src_kind, src_id, dst_kind, dst_id, relation)
    except Exception:
        log.warning("lineage edge %s:%s -> %s:%s not recorded", src_kind, src_id, dst_kind,
                    dst_id, exc_info=True)


# The server-side implementation of each kind: the one table `from_spec` reads.
BODIES: dict[str, Callable[..., Any]] = {
    "dataset_import": _import_dataset, "dataset_snapshot": _snapshot, "training_job": _train,
    "hpo_study": _hpo, "model_version": _model_version, "model_registration": _register,
    "alias_move": _move_alias, "evaluation": _evaluate, "deployment": _deploy,
    "canary": _canary, "prediction": _predict, "metrics_query": _query, "gate": _gate,
}


def from_spec(kind: str, name: str, inputs: list[str], params: list[str], defaults: Json,
              config: Json, **opts: Any) -> StepSpec:
    """A kind's step from its JSON description (see `_spec.rebuild`); raises InvalidArgument
    for a kind this server does not have."""
    body = BODIES.get(kind)
    if body is None:
        raise InvalidArgument(f"step {name!r} has kind {kind!r}, which is not a built-in kind "
                              f"({', '.join(sorted(BODIES))}); a Python step has kind 'python'",
                              {"steps": [name]})
    if kind == "gate" and config.get("op") not in _OPS:
        raise InvalidArgument(f"gate {name!r}: op must be one of {', '.join(_OPS)}",
                              {"steps": [name]})
    types = {a: Any for a in [*inputs, *params]}
    return _kind(kind, name, body, types, Any, config, defaults, **opts)
