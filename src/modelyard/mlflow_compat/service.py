"""MLflow's tracking use cases on top of the registry: experiments, runs, metrics, artifacts.

MLflow's vocabulary stays here: numeric experiment ids, run names, millisecond times, the
artifact tree of paths. The registry holds the runs, params, tags, metric series and the bytes
(content-addressed); this component keeps only what MLflow names and the registry does not
(experiment ids, the path of each file, logged models, where a version came from).
"""

from __future__ import annotations

import json
import re
from typing import Any, BinaryIO

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, InvalidArgument, NotFound
from modelyard.mlflow_compat._models import ModelsMixin
from modelyard.mlflow_compat._wire import RUN_NAME_TAG
from modelyard.mlflow_compat.models import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    ArtifactFile,
    Experiment,
)
from modelyard.mlflow_compat.store import MlflowStore
from modelyard.registry import MetricPoint, RegistryService, Run

DEFAULT = "default"  # the registry experiment MLflow calls `Default` (id 0)
MAX_LISTED_FILES = 10_000
_ENDED = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
_SEGMENT = re.compile(r"^[^/\\\x00]{1,255}$")
# MLflow's filter words that read differently in modelyard's run search
_STATUS = re.compile(r"(?i)\b((?:attributes?\.|attr\.)?status\s*(?:=|!=)\s*)(['\"])(\w+)\2")
_RUN_NAME = re.compile(r"(?i)\b(?:attributes?\.|attr\.)?run_name\b")
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_.\-/ ]")
_TIMES = {"start_time": "created_at", "end_time": "ended_at"}


def clean_path(path: str, what: str = "artifact path") -> str:
    """A relative POSIX path without `.`/`..` or empty parts; '' for the root."""
    if not isinstance(path, str) or len(path) > 1000:
        raise InvalidArgument(f"{what} must be a string of at most 1000 characters")
    path = path.strip("/")
    if not path:
        return ""
    parts = path.split("/")
    if any(p in (".", "..") or not _SEGMENT.match(p) for p in parts):
        raise InvalidArgument(f"invalid {what} {path[:200]!r}: use a relative path without "
                              "'.' or '..' parts", {"path": path[:200]})
    return path


def _experiment_number(experiment_id: str) -> int:
    if not isinstance(experiment_id, str) or not experiment_id.isdigit() or len(experiment_id) > 18:
        raise NotFound(f"experiment {str(experiment_id)[:40]!r} does not exist: MLflow "
                       "experiment ids here are numbers", {"experiment_id": str(experiment_id)[:40]})
    return int(experiment_id)


class MlflowService(ModelsMixin):
    def __init__(self, db: Database, registry: RegistryService) -> None:
        self.store = MlflowStore(db)
        self.registry = registry

    # experiments: MLflow's id <-> the registry experiment's name in the project
    def experiment_id(self, project: str, name: str) -> str:
        if name == DEFAULT:
            return DEFAULT_EXPERIMENT_ID
        return self.store.experiment_by_name(project, name, create=True).id

    def get_experiment(self, project: str, experiment_id: str) -> Experiment:
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            return Experiment(id=DEFAULT_EXPERIMENT_ID, name=DEFAULT, tags={}, created_at=None)
        return self.store.experiment_by_id(project, _experiment_number(experiment_id))

    def get_experiment_by_name(self, project: str, name: str) -> Experiment:
        if name in (DEFAULT, DEFAULT_EXPERIMENT_NAME):
            return self.get_experiment(project, DEFAULT_EXPERIMENT_ID)
        return self.store.experiment_by_name(project, name, create=False)

    def create_experiment(self, project: str, name: str, tags: dict[str, str]) -> Experiment:
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            raise InvalidArgument("an experiment name is 1 to 200 characters")
        if name in (DEFAULT, DEFAULT_EXPERIMENT_NAME):
            raise AlreadyExists(f"experiment {name!r} already exists (id 0)")
        try:
            found = self.store.experiment_by_name(project, name, create=False)
        except NotFound:
            return self.store.experiment_by_name(project, name, create=True, tags=tags)
        raise AlreadyExists(f"experiment {name!r} already exists (id {found.id})",
                            {"experiment_id": found.id})

    def search_experiments(self, project: str, offset: int, limit: int) -> list[Experiment]:
        """`Default` first, then the project's experiments in creation order."""
        found = [self.get_experiment(project, DEFAULT_EXPERIMENT_ID)] if offset == 0 else []
        rest = self.store.list_experiments(project, max(offset - 1, 0), limit - len(found))
        return found + rest

    def set_experiment_tag(self, project: str, experiment_id: str, key: str, value: str) -> None:
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            raise InvalidArgument("the Default experiment takes no tags here: create an "
                                "experiment of your own (mlflow.set_experiment) and tag that")
        self.store.set_experiment_tag(project, _experiment_number(experiment_id), key, value)

    # runs
    def create_run(self, project: str, user: str, experiment_id: str, run_name: str | None,
                   tags: dict[str, str]) -> Run:
        name = self.get_experiment(project, experiment_id or DEFAULT_EXPERIMENT_ID).name
        if run_name:
            tags = {**tags, RUN_NAME_TAG: run_name}
        return self.registry.create_run(project, name, tags=tags, user=user)

    def get_run(self, project: str, run_id: str) -> tuple[Run, str]:
        """The run and its MLflow experiment id."""
        run = self.registry.get_run(project, run_id)
        return run, self.experiment_id(project, run.experiment)

    def update_run(self, project: str, run_id: str, status: str | None,
                   run_name: str | None) -> Run:
        if run_name:
            self.registry.update_run(project, run_id, tags={RUN_NAME_TAG: run_name})
        if status in _ENDED:
            return self.registry.finish_run(project, run_id, _ENDED[status])
        if status not in (None, "", "RUNNING", "SCHEDULED"):
            raise InvalidArgument(f"unknown run status {status!r}")
        return self.registry.get_run(project, run_id)

    def log_batch(self, project: str, run_id: str, params: dict[str, str],
                  tags: dict[str, str], metrics: list[tuple[str, int, float, float]]) -> None:
        if params or tags:
            self.registry.update_run(project, run_id, params=params, tags=tags)
        if metrics:
            self.registry.log_metrics(project, run_id, metrics)

    def link_metrics(self, project: str, run_id: str,
                     metrics: list[tuple[str, int, float, float]]) -> None:
        """Points sent again to tie them to a logged model (MLflow 3's log_model re-sends the
        run's points of a step): a point the series already holds is not stored twice, as
        MLflow's own server ignores an identical point."""
        have = {(p.key, p.step, p.value, round(p.time * 1000))
                for key in {m[0] for m in metrics}
                for p in self.registry.get_metric_series(project, run_id, key)}
        new = [m for m in metrics
               if m[3] is None or (m[0], m[1], m[2], round(m[3] * 1000)) not in have]
        self.log_batch(project, run_id, {}, {}, new)

    def log_inputs(self, project: str, run_id: str, datasets: list[tuple[str, str, str, str]]
                   ) -> None:
        """Each (name, digest, source type, source) becomes the run tag `mlflow.input.<name>`,
        so modelyard's API shows what the run read (MLflow's dataset tables are not kept)."""
        tags = {}
        for name, digest, source_type, source in datasets:
            key = "mlflow.input." + (_UNSAFE_KEY.sub("_", name)[:200] or "dataset")
            tags[key] = json.dumps({"digest": digest, "source_type": source_type,
                                    "source": source[:4000]})[:5000]
        self.registry.update_run(project, run_id, tags=tags)

    def delete_tag(self, project: str, run_id: str, key: str) -> None:
        self.registry.update_run(project, run_id, delete_tags=[key])

    def metric_history(self, project: str, run_id: str, key: str) -> list[MetricPoint]:
        return self.registry.get_metric_series(project, run_id, key)

    def search_runs(self, project: str, experiment_ids: list[str], filter: str | None,
                    order_by: list[str], limit: int,
                    page_token: str | None) -> tuple[list[tuple[Run, str]], str | None]:
        if len(experiment_ids) > 1:
            raise InvalidArgument("search runs of one experiment at a time here (the results of "
                                "several would need one merged order)")
        exp_id = experiment_ids[0] if experiment_ids else None
        name = self.get_experiment(project, exp_id).name if exp_id is not None else None
        flt = _RUN_NAME.sub(f"tags.`{RUN_NAME_TAG}`", filter or "")
        flt = _STATUS.sub(lambda m: f"{m[1]}{m[2]}{m[3].lower()}{m[2]}", flt)
        order = [_order(o) for o in order_by]
        found = self.registry.search_runs(project, flt or None, order or None, limit, page_token,
                                          ["id"], name)
        runs = [self.get_run(project, r["id"]) for r in found.runs]
        return runs, found.next_page_token

    # the artifact tree (MLflow's proxied artifact routes)
    def put_artifact(self, project: str, path: str, stream: BinaryIO, media_type: str,
                     user: str) -> ArtifactFile:
        path = clean_path(path)
        if not path:
            raise InvalidArgument("name the file to upload: PUT .../artifacts/<path>")
        art = self.registry.put_artifact(project, stream, media_type, name=path[-500:],
                                         user=user)
        self.store.put_file(project, path, art.digest, art.size)
        return ArtifactFile(path=path, digest=art.digest, size=art.size)

    def open_artifact(self, project: str, path: str) -> tuple[ArtifactFile, BinaryIO]:
        path = clean_path(path)
        found = self.store.get_file(project, path) if path else None
        if found is None:
            raise NotFound(f"no artifact at {path!r}", {"path": path})
        return found, self.registry.open_artifact(project, found.digest)

    def list_artifacts(self, project: str, path: str) -> list[dict[str, Any]]:
        """The folder's direct children, as MLflow's artifact service lists them."""
        prefix = clean_path(path)
        files: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for f in self.store.files_under(project, prefix, MAX_LISTED_FILES):
            rest = f.path[len(prefix) + 1:] if prefix else f.path
            head, sep, _ = rest.partition("/")
            if sep:
                dirs.add(head)
            else:
                files.append({"path": head, "is_dir": False, "file_size": f.size})
        files += [{"path": d, "is_dir": True} for d in sorted(dirs)]
        return sorted(files, key=lambda f: f["path"])


def _order(item: str) -> str:
    """`attributes.start_time DESC` -> `created_at desc`; others are modelyard's words too."""
    field, _, direction = item.strip().partition(" ")
    for prefix in ("attributes.", "attribute.", "attr."):
        if field.startswith(prefix):
            field = field[len(prefix):]
    field = _TIMES.get(field, field)
    if field == "run_name":
        field = f"tags.{RUN_NAME_TAG}"
    return f"{field} {direction.strip().lower()}".strip()
