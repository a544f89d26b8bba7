"""Use cases of serving: deployments, and answering predictions with the right model version.

Requests run on the event loop up to the batcher; anything blocking (database, registry, model
loading, the network itself) runs in the service's thread pool.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from modelyard.core.db import Database
from modelyard.core.errors import FailedPrecondition, InvalidArgument, ModelyardError, NotFound
from modelyard.core.ids import check_name, utcnow
from modelyard.serving import _rollback, canary
from modelyard.serving._prom import ServingMetrics
from modelyard.serving._requests import RequestPath
from modelyard.serving.batcher import Batcher
from modelyard.serving.cache import Entry, ModelCache
from modelyard.serving.models import (
    Batching,
    Deployment,
    DeploymentCreate,
    DeploymentEvent,
    DeploymentUpdate,
    RollbackRule,
)
from modelyard.serving.runtime import SIZE_FACTOR, LoadedModel, ModelKey
from modelyard.serving.store import DeploymentStore, SqlDeploymentStore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from modelyard.core.settings import ServingSettings
    from modelyard.metrics.service import MetricsService
    from modelyard.registry.service import RegistryService

log = logging.getLogger("modelyard.serving")

# young-generation threshold of a serving process (see `ServingService.start`)
GC_GEN0_THRESHOLD = 50_000


class ServingService(RequestPath):
    """Deployments of registered model versions and the requests sent to them.

    Aliases are re-resolved every `alias_ttl_s` (or at once on `alias_moved`), so moving an
    alias switches new requests to the new version while queued ones finish on the old one.
    """

    alias_ttl_s = 2.0
    deployment_ttl_s = 1.0
    rollback_interval_s = 5.0

    def __init__(self, db: Database, settings: ServingSettings, registry: RegistryService,
                 metrics: MetricsService, prometheus: CollectorRegistry,
                 store: DeploymentStore | None = None) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.store = store or SqlDeploymentStore(db)
        self.cache = ModelCache(settings.memory_budget_mb << 20)
        self.prom = ServingMetrics(prometheus, self.cache)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._aliases: dict[tuple[str, str], tuple[int, float]] = {}
        self._deployments: dict[tuple[str, str], tuple[Deployment, float]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pin_failures: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max(4, os.cpu_count() or 1),
                                                thread_name_prefix="serving")
            return self._pool

    def start(self) -> None:
        """Load and pin pinned deployments' versions, then keep the pins in step with the
        store and watch canaries for the rollback rule."""
        if self.settings.tune_gc:
            _tune_gc()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="serving-canary", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.cache.clear()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _watch(self) -> None:
        try:
            self.sync_pins()
        except Exception:  # noqa: BLE001 - warming is best effort
            log.exception("pre-warming pinned deployments failed")
        # the models just loaded live as long as their pin: out of the collector's passes too
        # (else the first young pass, ~20 ms, walks all of them)
        if self.settings.tune_gc:
            gc.freeze()
        while not self._stopping.wait(self.rollback_interval_s):
            for step in (self.sync_pins, self.check_rollbacks):
                try:
                    step()
                except Exception:  # noqa: BLE001 - keep watching
                    log.exception("%s failed", step.__name__)

    def sync_pins(self) -> set[ModelKey]:
        """Pin exactly the versions pinned deployments route to, as the shared store says, and
        load those not loaded yet: so a restart, a replica, and a replica that missed a change
        made on another server (within `rollback_interval_s`) keep them. Returns them."""
        wanted: set[ModelKey] = set()
        for dep in self.store.list_deployments(None):
            if dep.pinned:
                try:
                    wanted.update(self._versions_of(dep))
                except ModelyardError as e:  # e.g. its alias names no version any more
                    self._pin_failed(f"{dep.project}/{dep.name}", e)
        self.cache.set_pinned(wanted)
        for key in sorted(wanted, key=str):
            if self.cache.peek_quiet(key) is None:
                try:
                    self._entry(key)
                except ModelyardError as e:
                    self._pin_failed(str(key), e)
        return wanted

    def _pin_failed(self, what: str, e: ModelyardError) -> None:
        if what not in self._pin_failures:  # once per thing, not every pass
            self._pin_failures.add(what)
            log.warning("cannot load pinned %s: %s", what, e.message)

    # -- deployments ----------------------------------------------------------------------------
    def create(self, project: str, body: DeploymentCreate, actor: str) -> Deployment:
        check_name(body.name, "deployment name")
        fields = self._validated(project, body.model_dump(exclude={"name", "warm"}))
        self._load_first(project, body.name, fields, body.warm)
        dep = self.store.create(project, body.name, fields, actor)
        self._after_change(dep)
        return dep

    def get(self, project: str, name: str) -> Deployment:
        return self.store.get(project, name)

    def list_deployments(self, project: str) -> list[Deployment]:
        return self.store.list_deployments(project)

    def update(self, project: str, name: str, body: DeploymentUpdate, actor: str) -> Deployment:
        current = self.store.get(project, name)
        changes = body.model_dump(exclude_unset=True, exclude={"warm"})
        merged = current.model_dump(include={"model_ref", "traffic", "shadow_version",
                                             "batching", "rollback", "pinned"})
        merged.update(changes)
        if merged.get("pinned") is None:
            merged["pinned"] = False
        if merged.get("batching") is None:
            merged["batching"] = {}
        fields = self._validated(project, merged)
        self._load_first(project, name, fields, body.warm)
        changed = {k: fields[k] for k in changes
                   if k in fields and not _same(k, fields[k], getattr(current, k))}
        if not changed:  # nothing differs: no event in the deployment's history
            return current
        before = self._versions_of(current)
        dep = self.store.update(project, name, fields, ("updated", f"updated by {actor}", changed))
        self._after_change(dep)
        for key in set(before) - set(self._versions_of(dep)):
            self.cache.pin(key, False)  # no longer routed to by this deployment
        return dep

    def set_traffic(self, project: str, name: str, traffic: dict[str, int] | None,
                    actor: str) -> Deployment:
        return self.update(project, name, DeploymentUpdate(traffic=traffic), actor)

    def delete(self, project: str, name: str, actor: str) -> None:
        dep = self.store.get(project, name)
        self.store.delete(project, name, ("deleted", f"deleted by {actor}", {}))
        self._deployments.pop((project, name), None)
        for key in self._versions_of(dep):
            self.cache.pin(key, False)

    def events(self, project: str, name: str, limit: int = 100) -> list[DeploymentEvent]:
        return self.store.events(project, name, min(max(limit, 1), 1000))

    def warm(self, project: str, name: str) -> list[int]:
        """Load every version the deployment routes to (blocking); returns them."""
        dep = self.store.get(project, name)
        keys = self._versions_of(dep)
        for key in keys:
            self._entry(key)
        return [k.version for k in keys]

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        """Event-bus listener: a moved alias is re-resolved at once (not after `alias_ttl_s`)
        and the version it now names is linked to the deployments that serve it."""
        if kind == "alert.firing":
            rule = self.metrics.get_alert(payload["project"], str(payload.get("alert")))
            if rule.spec.action == "rollback" and rule.spec.deployment:
                self.rollback_on_alert(rule.project, rule.spec.deployment, rule.spec.name,
                                       f"{rule.spec.metric} was {rule.value:.4g}, "
                                       f"{rule.spec.op} {rule.spec.threshold:g}")
            return
        if kind != "alias.moved":
            return
        project, model = payload["project"], payload["model"]
        self.alias_moved(project, model)
        ref = f"{model}@{payload['alias']}"
        for dep in self.store.list_deployments(project):
            if dep.model_ref == ref and not dep.traffic:
                self._link(dep, ModelKey(project, model, int(payload["version"])))

    def alias_moved(self, project: str, model: str) -> None:
        """Forget cached alias resolutions of `model` so the next request re-resolves."""
        for key in [k for k in self._aliases if k[0] == project and
                    k[1].split("@", 1)[0] == model]:
            self._aliases.pop(key, None)

    def _validated(self, project: str, fields: dict[str, Any]) -> dict[str, Any]:
        ref = str(fields.get("model_ref") or "")
        if "@" not in ref:
            raise InvalidArgument(f"model_ref {ref!r} needs a version or alias: write "
                                  "MODEL@VERSION or MODEL@ALIAS, e.g. digits@production",
                                  {"field": "model_ref"})
        model = self.registry.resolve(project, ref).model
        fields["traffic"] = canary.check_traffic(fields.get("traffic"))
        wanted = [int(v) for v in (fields["traffic"] or {})]
        if fields.get("shadow_version") is not None:
            wanted.append(int(fields["shadow_version"]))
        for v in wanted:
            try:
                self.registry.get_version(project, model, v)
            except NotFound:
                raise InvalidArgument(f"model {model!r} has no version {v} in project "
                                      f"{project!r}", {"model": model, "version": v}) from None
        return fields

    def _load_first(self, project: str, name: str, fields: dict[str, Any], warm: bool) -> None:
        """Load what a pinned or warmed deployment routes to before storing it, so a model
        that cannot load leaves nothing changed."""
        if not (warm or fields.get("pinned")):
            return
        now = utcnow()
        candidate = Deployment(
            id="", project=project, name=name, model=str(fields["model_ref"]).split("@", 1)[0],
            model_ref=fields["model_ref"], traffic=fields.get("traffic"),
            shadow_version=fields.get("shadow_version"),
            batching=Batching.model_validate(fields.get("batching") or {}),
            rollback=None, pinned=bool(fields.get("pinned")), created_at=now, updated_at=now,
            created_by="")
        self._aliases.pop((project, candidate.model_ref), None)
        for key in self._versions_of(candidate):
            self._entry(key)

    def _after_change(self, dep: Deployment) -> None:
        self._deployments.pop((dep.project, dep.name), None)
        self._aliases.pop((dep.project, dep.model_ref), None)
        for key in self._versions_of(dep):
            self.cache.pin(key, dep.pinned)
        self._lineage(dep)

    def _lineage(self, dep: Deployment) -> None:
        """model_version -> deployment for every version it routes to now (idempotent)."""
        for key in self._versions_of(dep):
            self._link(dep, key)

    def _link(self, dep: Deployment, key: ModelKey) -> None:
        try:
            self.registry.add_edge(dep.project, "model_version", f"{key.model}@{key.version}",
                                   "deployment", dep.id, "served_by")
        except ModelyardError:  # lineage is best effort: the deployment itself stands
            log.warning("lineage edge of deployment %s not recorded", dep.name, exc_info=True)

    def _versions_of(self, dep: Deployment) -> list[ModelKey]:
        versions = {int(v) for v, w in (dep.traffic or {}).items() if w > 0}
        if not dep.traffic:
            versions.add(self._resolve(dep))
        if dep.shadow_version:
            versions.add(dep.shadow_version)
        return [ModelKey(dep.project, dep.model, v) for v in sorted(versions)]

    def deployed_version(self, project: str, name: str) -> ModelKey:
        """The model version a deployment serves (during a canary, its stable version)."""
        dep = self._deployment(project, name)
        resolved = self._resolve(dep)
        version = canary.stable_version(dep, resolved) if dep.traffic else resolved
        return ModelKey(project, dep.model, version)

    # -- resolution and loading (blocking; called from the pool) ---------------------------------
    def _cached_deployment(self, project: str, name: str) -> Deployment | None:
        cached = self._deployments.get((project, name))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    def _cached_version(self, dep: Deployment) -> int | None:
        cached = self._aliases.get((dep.project, dep.model_ref))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    def _deployment(self, project: str, name: str) -> Deployment:
        cached = self._cached_deployment(project, name)
        if cached is not None:
            return cached
        dep = self.store.get(project, name)
        self._deployments[(project, name)] = (dep, time.monotonic() + self.deployment_ttl_s)
        return dep

    def _resolve(self, dep: Deployment) -> int:
        key = (dep.project, dep.model_ref)
        cached = self._cached_version(dep)
        if cached is not None:
            return cached
        version = self.registry.resolve(dep.project, dep.model_ref).version
        self._aliases[key] = (version, time.monotonic() + self.alias_ttl_s)
        return version

    def _entry(self, key: ModelKey) -> Entry:
        """The loaded model (each deployment gets its own batcher on it: `Entry.batcher`)."""
        return self.cache.get(key, lambda: self._load_model(key))

    def _load_model(self, key: ModelKey) -> Entry:
        mv = self.registry.get_version(key.project, key.model, key.version)
        name = next((n for n in ("model.onnx", "model.pt2") if n in mv.artifacts), None)
        if name is None:
            raise FailedPrecondition(
                f"model {key} has no model.onnx (or torch.export model.pt2) artifact to serve; "
                "register a version with one", {"artifacts": sorted(mv.artifacts)})
        blob = self.registry.read_artifact(key.project, mv.artifacts[name])
        self.cache.check_fits(key, len(blob) * SIZE_FACTOR)  # before building a session
        framework = "torch" if name == "model.pt2" else "onnx"
        model = LoadedModel(key, blob, mv.preprocessing, framework)
        s = self.settings
        on_batch = self.prom.batch_observer(key.project, key.model, key.version)

        def batcher(b: Batching) -> Batcher:  # a deployment's own settings over the server's
            return Batcher(
                model, self.pool,
                max_batch_size=b.max_batch_size or s.max_batch_size,
                max_delay_s=(b.max_batch_delay_ms if b.max_batch_delay_ms is not None
                             else s.max_batch_delay_ms) / 1000.0,
                max_queue=b.max_queue or s.max_queue,
                workers=s.batch_workers or os.cpu_count() or 1,
                on_batch=on_batch,
            )

        log.info("loaded %s (%d bytes estimated)", key, model.size_bytes)
        return Entry(model, batcher)

    # -- rollback -------------------------------------------------------------------------------
    def rollback_on_alert(self, project: str, name: str, alert: str,
                          why: str) -> DeploymentEvent:
        """Serve the deployment's previous version because alert rule `alert` fired (see
        `_rollback`); records a `rollback` event, or `rollback_skipped` saying why not."""
        try:
            dep = self.store.get(project, name)
        except NotFound:
            log.warning("alert %s/%s would roll back deployment %s, which does not exist",
                        project, alert, name)
            return DeploymentEvent(time=utcnow(), deployment=name, kind="rollback_skipped",
                                   message="no such deployment", details={"alert": alert})
        try:
            resolved: int | None = self._resolve(dep)
        except ModelyardError:
            resolved = None
        traffic, what = _rollback.plan(dep, resolved, self.registry, self.store)
        if traffic is None:
            message = f"alert {alert} fired ({why}), but no rollback: {what}"
            return self.store.add_event(project, name, "rollback_skipped", message,
                                        {"alert": alert})
        message = f"rolled back on alert {alert}: {what} ({why})"
        self.store.update(project, name, {"traffic": traffic},
                          ("rollback", message, _rollback.details(dep, traffic, alert)))
        self._deployments.pop((project, name), None)
        log.warning("deployment %s/%s: %s", project, name, message)
        return DeploymentEvent(time=utcnow(), deployment=name, kind="rollback", message=message,
                               details=_rollback.details(dep, traffic, alert))

    # -- canary rollback ------------------------------------------------------------------------
    def check_rollbacks(self) -> list[DeploymentEvent]:
        """Apply every deployment's rollback rule once; returns the rollbacks made."""
        done = []
        for dep in self.store.list_deployments(None):
            if dep.rollback is None or not dep.traffic or len(dep.traffic) < 2:
                continue
            try:
                resolved = self._resolve(dep)
            except ModelyardError:
                resolved = None
            stable = canary.stable_version(dep, resolved)
            found = canary.breach(dep, stable, self.metrics)
            if found is None:
                continue
            version, reason = found
            message = f"rolled back to version {stable}: {reason}"
            details = {"from_traffic": dep.traffic, "to_traffic": {str(stable): 100},
                       "canary": version}
            self.store.update(dep.project, dep.name, {"traffic": {str(stable): 100}},
                              ("rollback", message, details))
            self._deployments.pop((dep.project, dep.name), None)
            log.warning("deployment %s/%s: %s", dep.project, dep.name, message)
            done.append(DeploymentEvent(time=utcnow(), deployment=dep.name, kind="rollback",
                                        message=message, details=details))
        return done


def _same(field: str, new: Any, old: Any) -> bool:
    """Whether an update's value of `field` is what the deployment already has (settings
    compared with their defaults filled in, so `{}` and the defaults are the same)."""

    def norm(v: Any) -> Any:
        if isinstance(v, BaseModel):
            v = v.model_dump()
        if field == "batching":
            return Batching.model_validate(v or {}).model_dump()
        if field == "rollback" and v is not None:
            return RollbackRule.model_validate(v).model_dump()
        return v

    return bool(norm(new) == norm(old))


def _tune_gc() -> None:
    """For a process that is only a server (`ServingSettings.tune_gc`)."""
    # Everything alive now (modules, app, settings) lives as long as the process: keep it out
    # of the collector's full passes, which otherwise stall every request for tens of
    # milliseconds now and then under load.
    gc.freeze()
    # Each answer leaves a prediction event in the metrics buffer until the next flush (0.5 s):
    # at the default threshold (700 net new objects) those survivors set off a young collection
    # every few requests and get promoted, so gen 1 and full passes follow (measured over
    # 20,000 requests: ~200 gen-0, 17 gen-1 of up to 7 ms, a 15-20 ms full pass; ~10 in all
    # without the events). Request garbage is freed by reference counting, so the collector
    # only has to keep up with real cycles: let the young generation grow past a flush
    # window's worth of events before it runs.
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GC_GEN0_THRESHOLD), gen1, gen2)
