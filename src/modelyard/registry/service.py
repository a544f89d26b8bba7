"""Use cases of the registry: runs and metric series, artifacts, model versions, aliases, lineage.

Other components call this in-process (training, serving, workflows, datasets); job processes
reach the same operations over REST through the SDK.
"""

from __future__ import annotations

import os
import re
from contextlib import nullcontext
from datetime import timedelta
from typing import Any, BinaryIO

from modelyard.core.blobs import ContentStore
from modelyard.core.db import Database
from modelyard.core.errors import Conflict, InvalidArgument, NotFound
from modelyard.core.events import EventBus
from modelyard.core.ids import check_name, utcnow
from modelyard.registry import _checks, _compare, _lineage
from modelyard.registry._lineage import DeploymentLookup, LineageSource
from modelyard.registry._search import (
    decode_token,
    encode_token,
    parse_filter,
    parse_order_by,
    select_fields,
)
from modelyard.registry.models import (
    NODE_KINDS,
    AliasMove,
    Artifact,
    GcReport,
    LineageEdge,
    LineageGraph,
    MetricPoint,
    Model,
    ModelVersion,
    Run,
    RunComparison,
    RunSearchResult,
)
from modelyard.registry.store import RegistryStore, SqlRegistryStore

_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]{0,99})(?:@(?P<tag>[A-Za-z0-9._-]{1,100}))?$")
MAX_RETENTION_S = 100 * 365 * 86400
# Held (across processes) by garbage collection, by recording an upload and by registering a
# version, so a collection never deletes bytes that an upload or a new version just claimed.
ARTIFACT_GC_LOCK = "registry:artifact-gc"


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """`name`, `name@3`, `name@production` -> (name, version, alias); the latest when both None."""
    m = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if m is None or ".." in m["name"]:
        raise InvalidArgument(
            f"invalid model reference {str(ref)[:200]!r}: write NAME, NAME@VERSION or NAME@ALIAS, "
            "e.g. 'digits@3' or 'digits@production'", {"ref": str(ref)[:200]})
    tag = m["tag"]
    if tag is None or tag == "latest":
        return m["name"], None, None
    if tag.isdigit():
        if not 1 <= int(tag) <= 2**31 - 1:
            raise InvalidArgument(f"model versions run from 1 to 2**31-1, not {tag}", {"ref": ref})
        return m["name"], int(tag), None
    return m["name"], None, tag


def parse_node(node: str) -> tuple[str, str]:
    """`kind:id` (`model:NAME@3` is short for `model_version:NAME@3`)."""
    kind, sep, node_id = node.partition(":") if isinstance(node, str) else ("", "", "")
    kind = {"model": "model_version", "dataset": "dataset_snapshot", "snapshot": "dataset_snapshot"
            }.get(kind, kind)
    if not sep or not node_id or kind not in NODE_KINDS:
        raise InvalidArgument(f"invalid lineage node {str(node)[:200]!r}: write KIND:ID with KIND "
                              f"one of {', '.join(NODE_KINDS)} (or model:NAME@VERSION)")
    return kind, node_id


class RegistryService:
    def __init__(self, db: Database, cas: ContentStore, store: RegistryStore | None = None) -> None:
        self.db = db
        self.cas = cas
        self.store: RegistryStore = store or SqlRegistryStore(db)
        self.events = EventBus()  # the platform shares one bus between components
        # Who serves what: serving, wired by the platform (the registry never reads its tables).
        self.deployments: DeploymentLookup | None = None
        # kind -> what its owner knows of its nodes (datasets, jobs, studies, deployments,
        # predictions), also wired by the platform
        self.lineage_sources: dict[str, LineageSource] = {}

    # experiments and runs
    def create_run(self, project: str, experiment: str = "default",
                   params: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
                   job_id: str | None = None, code_hash: str | None = None,
                   dataset_snapshot: str | None = None, user: str = "system") -> Run:
        experiment = _checks.text(experiment, "experiment", 200)
        params = _checks.params(params or {})
        tags = _checks.tags(tags or {})
        edges = [LineageEdge(src_kind=kind, src_id=src, dst_kind="run", dst_id="", relation=rel)
                 for kind, src, rel in (("job", job_id, "ran"), ("code", code_hash, "code_of"),
                                        ("dataset_snapshot", dataset_snapshot, "read_by")) if src]
        return self.store.create_run(project, experiment, params, tags, job_id, code_hash,
                                     dataset_snapshot, user, edges)

    def get_run(self, project: str, run_id: str) -> Run:
        return self.store.get_run(project, run_id)

    def finish_run(self, project: str, run_id: str, status: str = "finished") -> Run:
        if status not in ("finished", "failed", "killed"):
            raise InvalidArgument(f"a run ends as 'finished', 'failed' or 'killed', not {status!r}")
        return self.store.finish_run(project, run_id, status)

    def update_run(self, project: str, run_id: str, params: dict[str, Any] | None = None,
                   tags: dict[str, str] | None = None,
                   delete_tags: list[str] | None = None) -> Run:
        """Params logged after the start (a param never changes value) and tags set or removed."""
        return self.store.update_run(project, run_id, _checks.params(params or {}),
                                     _checks.tags(tags or {}),
                                     [_checks.key(k, "tag name") for k in delete_tags or []])

    def log_metrics(self, project: str, run_id: str, points: list[Any]) -> int:
        """Stores every point in one transaction (all or none); points are (key, step, value,
        time) tuples, dicts or MetricPoint; time is epoch seconds, a datetime or None (now)."""
        return self.store.log_metrics(project, run_id, _checks.points(points))

    def get_metric_series(self, project: str, run_id: str, key: str) -> list[MetricPoint]:
        return self.store.get_metric_series(project, run_id, key)

    def search_runs(self, project: str, filter: str | list[dict[str, Any]] | None = None,
                    order_by: list[str] | None = None, limit: int = 50,
                    page_token: str | None = None, fields: list[str] | None = None,
                    experiment: str | None = None) -> RunSearchResult:
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"limit must be between 1 and 1000, not {limit}")
        offset = decode_token(page_token)
        runs, more = self.store.search_runs(project, parse_filter(filter), parse_order_by(order_by),
                                            experiment, offset, limit)
        items = [select_fields(r.model_dump(mode="json"), fields) for r in runs]
        return RunSearchResult(runs=items, next_page_token=encode_token(offset + limit) if more else None)

    # artifacts
    def put_artifact(self, project: str, stream: bytes | BinaryIO | os.PathLike[str],
                     media_type: str = "application/octet-stream", name: str = "",
                     user: str = "system", max_bytes: int | None = None,
                     expect_digest: str | None = None) -> Artifact:
        """Hashes and stores the bytes once (content-addressed), then records them in `project`.
        A stream that fails midway, is too long or does not match `expect_digest` stores nothing."""
        media_type = _checks.text(media_type or "application/octet-stream", "media_type", 200)
        name = _checks.text(name, "name", 500, allow_empty=True)
        with open(stream, "rb") if isinstance(stream, os.PathLike) else nullcontext(stream) as f, \
                self.cas.staged(f, max_bytes, expect_digest) as staged:
            staged.store()  # outside the lock: uploads write their bytes side by side
            with self.db.exclusive(ARTIFACT_GC_LOCK):
                # store() skips bytes already stored, which a collection may have deleted since
                # (their last row went); the spool still holds them, so they are stored again
                # rather than the upload failing. Under the lock no collection comes between
                # this and the row.
                stored = staged.store()
                return self.store.add_artifact(project, stored.digest, stored.size, media_type,
                                               name, user)

    def get_artifact(self, project: str, digest: str) -> Artifact:
        return self.store.get_artifact(project, _checks.digest(digest))

    def open_artifact(self, project: str, digest: str) -> BinaryIO:
        """A readable stream of the artifact's bytes; the caller closes it."""
        self.get_artifact(project, digest)
        return self.cas.open(digest)

    def read_artifact(self, project: str, digest: str) -> bytes:
        with self.open_artifact(project, digest) as f:
            return f.read()

    def list_artifacts(self, project: str, limit: int = 100, offset: int = 0) -> list[Artifact]:
        if not 0 <= offset <= 2**53:
            raise InvalidArgument(f"offset must be between 0 and 2**53, not {offset}")
        return self.store.list_artifacts(project, offset, min(max(limit, 1), 1000))

    def gc_artifacts(self, retention_s: float = 7 * 86400, project: str | None = None) -> GcReport:
        """Forgets artifacts that no model version holds and whose last upload is older than
        the retention (in `project`, or everywhere), then deletes the bytes no project
        references any more.
        Blobs that other components keep in the content store without an artifact row (code
        packages, checkpoints) are never touched."""
        if not 0 <= retention_s <= MAX_RETENTION_S:
            raise InvalidArgument(f"retention_s must be between 0 and {MAX_RETENTION_S} "
                                  f"(100 years), not {retention_s}")
        blobs = freed = 0
        with self.db.exclusive(ARTIFACT_GC_LOCK):
            gone, rows = self.store.collect_artifacts(utcnow() - timedelta(seconds=retention_s),
                                                      project)
            for digest, size in gone:
                try:
                    self.cas.delete(digest)
                    blobs += 1
                    freed += size
                except NotFound:
                    pass
        return GcReport(artifact_rows_deleted=rows, blobs_deleted=blobs, bytes_freed=freed)

    # models, versions and aliases
    def create_model(self, project: str, name: str, user: str = "system") -> Model:
        return self.store.ensure_model(project, check_name(name, "model name"), user)

    def get_model(self, project: str, name: str) -> Model:
        return self.store.get_model(project, name)

    def list_models(self, project: str) -> list[Model]:
        return self.store.list_models(project)

    def register_version(self, project: str, model: str, artifacts: dict[str, str] | None = None,
                         framework: str = "onnx", signature: dict[str, Any] | None = None,
                         preprocessing: dict[str, Any] | None = None,
                         metrics: dict[str, Any] | None = None, run_id: str | None = None,
                         job_id: str | None = None, dataset_snapshot_id: str | None = None,
                         code_hash: str | None = None, params: dict[str, Any] | None = None,
                         user: str = "system") -> ModelVersion:
        """The next version of `model` (created if missing). Every artifact must have been
        uploaded to the project; job, snapshot, code and params default to the run's."""
        check_name(model, "model name")
        artifacts = _checks.artifacts(artifacts or {})
        if run_id is not None:
            run = self.store.get_run(project, run_id)
            job_id = job_id or run.job_id
            dataset_snapshot_id = dataset_snapshot_id or run.dataset_snapshot
            code_hash = code_hash or run.code_hash
            params = run.params if params is None else params
        fields = {
            "artifacts": artifacts, "framework": _checks.text(framework, "framework", 100),
            "signature": _checks.json_dict(signature, "signature"),
            "preprocessing": _checks.json_dict(preprocessing, "preprocessing"),
            "metrics": _checks.json_dict(metrics, "metrics"),
            "params": _checks.json_dict(params, "params"), "run_id": run_id, "job_id": job_id,
            "dataset_snapshot_id": dataset_snapshot_id, "code_hash": code_hash,
        }
        edges = [LineageEdge(src_kind=kind, src_id=src, dst_kind="model_version", dst_id="",
                             relation=rel)
                 for kind, src, rel in (("run", run_id, "logged"), ("job", job_id, "produced"),
                                        ("dataset_snapshot", dataset_snapshot_id, "trained"),
                                        ("code", code_hash, "built")) if src]
        # no collection between the artifacts' check and the version that holds them
        with self.db.exclusive(ARTIFACT_GC_LOCK) if artifacts else nullcontext():
            for digest in set(artifacts.values()):
                try:
                    self.store.get_artifact(project, digest)
                except NotFound:
                    raise InvalidArgument(f"artifact {digest} is not in project {project!r}: "
                                          "upload it with put_artifact first",
                                          {"digest": digest}) from None
            self.store.ensure_model(project, model, user)
            return self.store.add_version(project, model, fields, user, edges)

    def get_version(self, project: str, model: str, version: int) -> ModelVersion:
        if not 1 <= version <= 2**31 - 1:
            raise NotFound(f"model {model!r} has no version {version}", {"model": model})
        return self.store.get_version(project, model, version)

    def list_versions(self, project: str, model: str) -> list[ModelVersion]:
        return self.store.list_versions(project, model)

    def resolve(self, project: str, ref: str) -> ModelVersion:
        """`name@3`, `name@production` or `name` (the latest version)."""
        name, version, alias = parse_ref(ref)
        return self.store.get_version(project, name, version, alias)

    def set_alias(self, project: str, model: str, alias: str, version: int,
                  actor: str = "system") -> AliasMove:
        """Points `alias` at `version` and records who moved it, from where, in one transaction;
        an alias already there is left alone (`moved` False, no history, no `alias.moved`)."""
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31:
            raise InvalidArgument(f"version must be a positive integer, not {version!r}")
        move = self.store.set_alias(project, model, _checks.alias(alias), version, actor)
        if not move.moved:  # already there: nothing happened, so nothing is announced
            return move
        self.events.publish("alias.moved", {"project": project, "model": model,
                                            "alias": move.alias, "version": version})
        return move

    def delete_alias(self, project: str, model: str, alias: str, actor: str = "system") -> AliasMove:
        """Refused (Conflict) while a deployment follows the alias: its every request would
        404 after the delete."""
        alias = _checks.alias(alias)
        following = self._deployments(project, model, alias=alias)
        if following:
            raise Conflict(f"alias {model}@{alias} is followed by deployment(s) "
                           f"{', '.join(following)}; point them elsewhere (modelyard deploy "
                           "update) or delete them first",
                           {"model": model, "alias": alias, "deployments": following})
        return self.store.set_alias(project, model, alias, None, actor)

    def update_version(self, project: str, model: str, version: int,
                       description: str | None = None, tags: dict[str, str] | None = None,
                       archived: bool | None = None) -> ModelVersion:
        """Sets what is given. Archiving is refused (Conflict naming them) while an alias or a
        deployment uses the version."""
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = _checks.text(description, "description", 10_000,
                                                  allow_empty=True)
        if tags is not None:
            changes["tags"] = _checks.tags(tags)
        if archived is not None:
            if archived:
                self._refuse_if_deployed(project, model, version, "archive")
            changes["archived"] = bool(archived)
        return self.store.update_version(project, model, self._version_no(model, version),
                                         changes)

    def delete_version(self, project: str, model: str, version: int) -> ModelVersion:
        """Deletes a version no alias or deployment uses (else Conflict naming them)."""
        self._refuse_if_deployed(project, model, version, "delete")
        return self.store.delete_version(project, model, self._version_no(model, version))

    @staticmethod
    def _version_no(model: str, version: int) -> int:
        if not 1 <= version <= 2**31 - 1:
            raise NotFound(f"model {model!r} has no version {version}", {"model": model})
        return version

    def _deployments(self, project: str, model: str, version: int | None = None,
                     alias: str | None = None) -> list[str]:
        if self.deployments is None:
            return []
        return self.deployments.deployments_using(project, model, version, alias)

    def _refuse_if_deployed(self, project: str, model: str, version: int, what: str) -> None:
        using = self._deployments(project, model, version=version)
        if using:
            aliases = self.get_version(project, model, version).aliases
            raise Conflict(f"cannot {what} {model}@{version}: deployment(s) {', '.join(using)} "
                           "serve it; point them at another version or delete them first",
                           {"model": model, "version": version, "deployments": using,
                            "aliases": aliases})

    def compare_runs(self, project: str, run_ids: list[str]) -> RunComparison:
        """The runs side by side: their params (and which differ) and, per metric, the
        last/min/max of each run's series."""
        return _compare.compare(self.store, project, run_ids)

    def alias_history(self, project: str, model: str, alias: str | None = None) -> list[AliasMove]:
        return self.store.alias_history(project, model, alias)

    # lineage
    def _node_id(self, project: str, kind: str, node_id: str, verify: bool = False) -> str:
        """The canonical id; with `verify`, NotFound unless the node is one of the project's
        (nodes of kinds nobody describes, like code hashes, are taken as they are)."""
        if kind not in NODE_KINDS:
            raise InvalidArgument(f"unknown lineage kind {kind!r}: use one of {', '.join(NODE_KINDS)}")
        node_id = _checks.text(node_id, f"{kind} id", 200)
        if kind == "model_version":
            if node_id.startswith("mv_"):
                return self.store.version_by_id(project, node_id).ref
            return self.resolve(project, node_id).ref  # canonical NAME@VERSION
        if verify and kind == "run":
            self.store.get_run(project, node_id)
        elif verify and kind in self.lineage_sources:
            return self.lineage_sources[kind].resolve(project, node_id)
        return node_id

    def add_edge(self, project: str, src_kind: str, src_id: str, dst_kind: str, dst_id: str,
                 relation: str = "derived_from", verify: bool = False) -> LineageEdge:
        """Records that (src_kind, src_id) went into (dst_kind, dst_id); idempotent.
        A model version is named NAME@VERSION (an alias or its id is resolved). With `verify`
        (every edge a caller sends over REST) both ends must be the project's own nodes: an
        edge naming another project's id is refused with NotFound, as a missing one is."""
        edge = LineageEdge(src_kind=src_kind,
                           src_id=self._node_id(project, src_kind, src_id, verify),
                           dst_kind=dst_kind,
                           dst_id=self._node_id(project, dst_kind, dst_id, verify),
                           relation=_checks.text(relation, "relation", 100))
        self.store.add_edges(project, [edge])
        return edge

    def is_referenced(self, project: str, kind: str, node_id: str) -> bool:
        return self.store.is_referenced(project, kind, node_id)

    def lineage(self, project: str, kind: str, node_id: str, direction: str = "upstream",
                depth: int = 10) -> LineageGraph:
        """The graph reachable from the node within `depth` hops, walking inputs (upstream) or
        outputs (downstream). NotFound when the node is not the project's; a deployment may
        be named by its name."""
        if direction not in ("upstream", "downstream"):
            raise InvalidArgument(f"direction is 'upstream' or 'downstream', not {direction!r}")
        if not 1 <= depth <= 50:
            raise InvalidArgument(f"depth must be between 1 and 50, not {depth}")
        root = (kind, self._node_id(project, kind, node_id, verify=True))
        return _lineage.walk(self.store, self.lineage_sources, project, root,
                             direction == "upstream", depth)
