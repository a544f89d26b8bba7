"""Use cases of the workflow manager: register, run, watch, cancel, schedule, react to events."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter  # type: ignore[import-untyped]

from modelyard.core import codepkg
from modelyard.core.auth import Principal, Role
from modelyard.core.db import Database
from modelyard.core.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.core.ids import check_name, utcnow
from modelyard.workflows._runner import SandboxRunner
from modelyard.workflows._spec import definition_hash, parse, rebuild
from modelyard.workflows.dsl import Pipeline as PipelineDef
from modelyard.workflows.engine import Engine
from modelyard.workflows.loader import builtin_name, load_builtin
from modelyard.workflows.models import (
    TERMINAL_RUN,
    Pipeline,
    PipelineVersion,
    Run,
    Trigger,
    TriggerCreate,
    TriggerUpdate,
)
from modelyard.workflows.store import WorkflowStore

if TYPE_CHECKING:
    from modelyard.server.platform import Platform

log = logging.getLogger("modelyard.workflows")
EVENTS = ("dataset.commit", "alias.moved", "alert.firing")
MAX_WORKERS = 4
CRON_EVERY_S = 1.0
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class WorkflowService:
    def __init__(self, db: Database, platform: Platform) -> None:
        self.db = db
        self.platform = platform
        self.store = WorkflowStore(db)
        self.cas = getattr(platform, "cas", None)
        self.runner = self._make_runner()
        self.engine = Engine(self.store, self._load_for_run, self.cas, platform,
                             max_workers=MAX_WORKERS,
                             sandboxed=self.runner.step if self.runner else None)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_cron = 0.0

    def _make_runner(self) -> SandboxRunner | None:
        settings = getattr(self.platform, "settings", None)
        if settings is None or self.cas is None:
            return None  # a bare engine (store tests): built-in steps only
        from modelyard.sandbox import Sandbox

        sandbox = getattr(self.platform, "sandbox", None)
        if sandbox is None:
            users = getattr(getattr(self.platform, "auth", None), "store", None)
            sandbox = Sandbox(settings, users.count_users if users is not None else None)
        return SandboxRunner(sandbox, self.cas, settings.home / "workflows" / "sandbox",
                             settings.resolved_public_url, self._issue_token)

    def _issue_token(self, actor: str, project: str, ttl_s: int,
                     name: str) -> tuple[str, Callable[[], None]] | None:
        """A token for a sandboxed step: editor in the run's project only, for the run's user."""
        auth = getattr(self.platform, "auth", None)
        if auth is None:
            return None
        try:
            token = auth.scoped_token(actor, project, Role.editor, ttl_s, name=name)
        except NotFound:  # the run's user is gone (or a test's made-up actor)
            return None
        holder = auth.authenticate(token)

        def revoke() -> None:
            auth.revoke_token(Principal(user_id=holder.user_id, user_name=actor),
                              holder.token_id)

        return token, revoke

    # -- background loop --------------------------------------------------------------------
    def start(self) -> None:
        """Resume runs left `running` by a previous process, then keep driving runs."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="modelyard-workflows",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.engine.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.engine.shutdown()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.engine.wake.clear()
            try:
                self.engine.tick()
                if time.monotonic() - self._last_cron >= CRON_EVERY_S:
                    self._last_cron = time.monotonic()
                    self.fire_due_schedules()
                    self.watch_datasets()
            except Exception:
                log.exception("workflow engine tick failed")
            nxt = self.engine.next_wakeup()
            self.engine.wake.wait(0.5 if nxt is None else max(0.0, min(0.5, nxt)))

    @property
    def looping(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- pipelines --------------------------------------------------------------------------
    def register(self, project: str, source: str, actor: str, name: str | None = None) -> Pipeline:
        """Register a built-in pipeline (modelyard's own code, imported here); any other
        source is an InvalidArgument saying how to upload a package."""
        pl = load_builtin(source)
        name = check_name(name, "pipeline name") if name else pl.name
        return self.store.upsert_pipeline(project, name, source, pl.description,
                                          pl.definition_hash(), pl.definition(), actor)

    def register_package(self, project: str, data: bytes, entry: str, actor: str,
                         name: str | None = None) -> Pipeline:
        """Validate a code package, load its pipeline in the sandbox, store both.

        The version hash covers the package's digest (its files' paths and contents): an edit
        is a new version whose runs run the new code; the same files packed again are the
        same version. Raises InvalidArgument or PayloadTooLarge for a package or definition
        that cannot be used, FailedPrecondition when user code may not run here; nothing is
        stored then.
        """
        if name is not None:
            check_name(name, "pipeline name")
        if not _ENTRY.match(entry):
            raise InvalidArgument(f"entry {entry[:100]!r} must be `module:attr`, naming a "
                                  "Pipeline or a function returning one (e.g. pipeline:pipeline)",
                                  {"field": "entry"})
        if self.runner is None or self.cas is None:
            raise FailedPrecondition("this server cannot run pipeline packages")
        settings = getattr(self.platform, "settings", None)
        limits = settings.security.package_limits() if settings else codepkg.DEFAULT_LIMITS
        pkg = codepkg.normalize(data, limits=limits)
        codepkg.check_entrypoint(pkg.files, entry)
        doc = parse(self.runner.load(pkg.data, entry))
        rebuild(doc, pkg.digest, entry)  # the server's own checks of the DAG
        definition = {**doc.model_dump(mode="json"),
                      "package": {"digest": pkg.digest, "entry": entry}}
        self.cas.put(pkg.data)  # only once everything held: a refused package leaves nothing
        return self.store.upsert_pipeline(project, name or doc.name, "package", doc.description,
                                          definition_hash(definition), definition, actor,
                                          pkg.digest, entry)

    def get_pipeline(self, project: str, name: str) -> Pipeline:
        return self.store.get_pipeline(project, name)

    def list_pipelines(self, project: str) -> list[Pipeline]:
        return self.store.list_pipelines(project)

    def versions(self, project: str, name: str) -> list[PipelineVersion]:
        self.store.get_pipeline(project, name)
        return self.store.versions(project, name)

    def _version(self, meta: Pipeline, version: str) -> tuple[PipelineDef, str, dict[str, Any]]:
        """(pipeline, version hash, definition) of an older version, named by its hash or a
        unique prefix of it: the run runs that version's code package."""
        found = [v.hash for v in self.store.versions(meta.project, meta.name)
                 if v.hash.startswith(version)]
        if len(found) != 1:
            what = "no version" if not found else f"{len(found)} versions"
            raise (NotFound if not found else InvalidArgument)(
                f"pipeline {meta.name!r} has {what} starting with {version!r}; list them with "
                f"`modelyard pipeline versions {meta.name}` and give more of the hash",
                {"pipeline": meta.name, "version": version})
        if meta.package_digest is None and builtin_name(meta.source) and \
                found[0] != meta.definition_hash:
            raise FailedPrecondition(
                f"pipeline {meta.name!r} is built in: it runs the code of this server, so only "
                "its current version can run", {"pipeline": meta.name, "version": found[0]})
        definition = self.store.definition(meta.project, meta.name, found[0])
        return self._pipeline_of(meta, definition), found[0], definition

    def _load_for_run(self, run: Run) -> PipelineDef:
        """The pipeline of the version the run was started on: a package run runs the code of
        the package it recorded, whatever was registered since."""
        meta = self.store.get_pipeline(run.project, run.pipeline)
        return self._pipeline_of(meta, self.store.run_definition(run.id))

    def _current(self, meta: Pipeline) -> tuple[PipelineDef, str, dict[str, Any]]:
        """(pipeline, version hash, definition) a new run of `meta` gets."""
        if meta.package_digest is None and builtin_name(meta.source):
            pl = load_builtin(meta.source)  # modelyard's own code, as this server has it
            return pl, pl.definition_hash(), pl.definition()
        definition = self.store.definition(meta.project, meta.name, meta.definition_hash)
        return self._pipeline_of(meta, definition), meta.definition_hash, definition

    def _pipeline_of(self, meta: Pipeline, definition: dict[str, Any]) -> PipelineDef:
        package = definition.get("package")
        if isinstance(package, dict):
            doc = parse({k: v for k, v in definition.items() if k != "package"})
            return rebuild(doc, package["digest"], package["entry"])
        if builtin_name(meta.source):
            return load_builtin(meta.source)
        raise FailedPrecondition(
            f"pipeline {meta.name!r} was registered from {meta.source!r}, a module the server "
            "imported itself; the server no longer imports user code, so it cannot run. "
            f"Re-register it as a code package (`modelyard pipeline register DIR --entry "
            f"{meta.source}`, DIR holding that module) and run it again",
            {"pipeline": meta.name, "source": meta.source})

    # -- runs -------------------------------------------------------------------------------
    def run(self, project: str, name: str, params: dict[str, Any] | None, actor: str,
            trigger: str = "manual", *, version: str | None = None,
            no_cache: bool = False) -> Run:
        """Queue a run of the pipeline's current version, or of the older `version` (202: the
        engine picks it up). With `no_cache` every step runs afresh."""
        meta = self.store.get_pipeline(project, name)
        pl, digest, definition = self._version(meta, version) if version else self._current(meta)
        params = dict(params or {})
        known = {p for ps in pl.step_params.values() for p in ps} | set(pl.params)
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidArgument(f"pipeline {name!r} has no parameters {', '.join(unknown)}; "
                                  f"its parameters are: {', '.join(sorted(known)) or 'none'}",
                                  {"unknown": unknown})
        run = self.store.create_run(meta, digest, definition, params, trigger, actor, no_cache)
        self.engine.wake.set()
        return run

    def get_run(self, project: str, run_id: str) -> Run:
        return self.store.get_run(run_id, project)

    def list_runs(self, project: str, pipeline: str | None = None, limit: int = 50) -> list[Run]:
        return self.store.list_runs(project, pipeline, max(1, min(limit, 1000)))

    def cancel(self, project: str, run_id: str) -> Run:
        run = self.store.request_cancel(project, run_id)
        if run.state in TERMINAL_RUN:
            raise FailedPrecondition(f"run {run_id} already ended ({run.state}); nothing to cancel")
        self.engine.wake.set()
        return self.store.get_run(run_id, project)

    def wait(self, project: str, run_id: str, timeout_s: float = 60.0) -> Run:
        """The run once it ended, or as it is after `timeout_s`.

        Without the background loop (tests, `background=False`) the caller's thread drives
        the engine itself.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.store.get_run(run_id, project)
            if run.state in TERMINAL_RUN or time.monotonic() >= deadline:
                return run
            if self.looping:
                time.sleep(0.05)
                continue
            self.engine.wake.clear()
            self.engine.tick()
            if self.engine.is_active(run_id):
                nxt = self.engine.next_wakeup()
                self.engine.wake.wait(0.05 if nxt is None else max(0.0, min(0.05, nxt)))

    # -- triggers ---------------------------------------------------------------------------
    def create_schedule(self, project: str, pipeline: str, body: TriggerCreate,
                        actor: str) -> Trigger:
        meta = self.store.get_pipeline(project, pipeline)
        if (body.cron is None) == (body.event is None):
            raise InvalidArgument("give exactly one of `cron` (e.g. '0 3 * * *') or `event` "
                                  f"(one of {', '.join(EVENTS)})")
        nxt = _next_fire(body.cron, utcnow()) if body.cron else None
        cursor: dict[str, Any] = {}
        if body.event == "dataset.commit" and body.match.get("dataset"):
            cursor = {"version": self._head_version(project, str(body.match["dataset"]))}
        return self.store.create_trigger(meta, "cron" if body.cron else "event", body.cron,
                                         body.event, body.match, body.params, body.enabled,
                                         nxt, actor, cursor, body.no_cache)

    def _head_version(self, project: str, dataset: str) -> int:
        try:
            head = self.platform.datasets.get_dataset(project, dataset).head_version
        except Exception:  # noqa: BLE001 - not there yet: its first commit is news
            return 0
        return int(head or 0)

    def watch_datasets(self) -> list[Run]:
        """Fire `dataset.commit` triggers for commits made since each trigger last looked.

        The datasets service may also call `on_event`; the trigger's cursor makes each
        commit start one run either way.
        """
        runs: list[Run] = []
        for t in self.store.list_triggers(event="dataset.commit"):
            name = t.match.get("dataset")
            if not name:
                continue
            head = self._head_version(t.project, str(name))
            if head > int(t.cursor.get("version", 0)):
                runs += self.on_event("dataset.commit", {"project": t.project, "dataset": name,
                                                         "version": head})
        return runs

    def list_schedules(self, project: str, pipeline: str | None = None) -> list[Trigger]:
        return self.store.list_triggers(project, pipeline)

    def get_schedule(self, project: str, trigger_id: str) -> Trigger:
        return self.store.get_trigger(project, trigger_id)

    def update_schedule(self, project: str, trigger_id: str, body: TriggerUpdate) -> Trigger:
        t = self.store.get_trigger(project, trigger_id)
        fields: dict[str, Any] = body.model_dump(exclude_none=True)
        if "cron" in fields:
            if t.kind != "cron":
                raise InvalidArgument(f"schedule {trigger_id} is an event trigger; it has no cron")
            fields["next_fire_at"] = _next_fire(fields["cron"], utcnow())
        if fields:
            self.store.update_trigger(trigger_id, **fields)
        return self.store.get_trigger(project, trigger_id)

    def delete_schedule(self, project: str, trigger_id: str) -> None:
        self.store.delete_trigger(project, trigger_id)

    def fire_due_schedules(self, now: datetime | None = None) -> list[Run]:
        """Start one run per cron schedule that is due (missed firings are not replayed)."""
        now = now or utcnow()
        runs = []
        for t in self.store.due_cron(now):
            self.store.update_trigger(t.id, last_fired_at=now,
                                      next_fire_at=_next_fire(t.cron or "", now))
            runs.append(self._fire(t, f"cron:{t.id}", {}))
        return [r for r in runs if r is not None]

    def on_event(self, kind: str, payload: dict[str, Any]) -> list[Run]:
        """Hook for other services: `dataset.commit`, `alias.moved`, `alert.firing`.

        `payload["project"]` selects the project; a trigger fires when every key of its
        `match` equals the payload's. Never raises: a failing trigger is logged.
        """
        runs: list[Run] = []
        try:
            for t in self.store.list_triggers(payload.get("project"), event=kind):
                if all(payload.get(k) == v for k, v in t.match.items()):
                    version = payload.get("version")
                    if kind == "dataset.commit" and isinstance(version, int) and \
                            not self.store.advance_cursor(t.id, "version", version):
                        continue  # this commit already started a run
                    run = self._fire(t, f"event:{kind}", payload)
                    if run is not None:
                        runs.append(run)
        except Exception:
            log.exception("event %s could not be dispatched", kind)
        return runs

    def _fire(self, t: Trigger, why: str, payload: dict[str, Any]) -> Run | None:
        try:
            meta = self.store.get_pipeline(t.project, t.pipeline)
            pl = self._current(meta)[0]
            wanted = {p for ps in pl.step_params.values() for p in ps}
            params = dict(t.params)
            if "event" in wanted:
                params["event"] = payload
            return self.run(t.project, t.pipeline, params, t.created_by, trigger=why,
                            no_cache=t.no_cache)
        except Exception:
            log.exception("trigger %s could not start pipeline %s", t.id, t.pipeline)
            return None


def _next_fire(expr: str, after: datetime) -> datetime:
    if not croniter.is_valid(expr):
        raise InvalidArgument(f"{expr!r} is not a cron expression; use five fields, "
                              "e.g. '*/15 * * * *' (every 15 minutes)")
    nxt: datetime = croniter(expr, after).get_next(datetime)
    return nxt
