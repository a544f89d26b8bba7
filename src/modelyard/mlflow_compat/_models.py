"""MLflow's model registry and MLflow 3's logged models, on top of the registry's models.

A registered model is a registry model; a model version is made of the files of the artifact
tree under its `source` (a run's folder, a logged model's folder), each file an artifact of
the version, named by its path under that folder. Its run links it into lineage.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import AlreadyExists, InvalidArgument, NotFound
from modelyard.mlflow_compat._wire import artifact_root
from modelyard.mlflow_compat.models import LoggedModel
from modelyard.registry import Model, ModelVersion

if TYPE_CHECKING:
    from modelyard.mlflow_compat.store import MlflowStore
    from modelyard.registry import RegistryService, Run

MAX_VERSION_FILES = 10_000
_NAME_FILTER = re.compile(r"""^\s*name\s*(=|(?i:like|ilike))\s*(['"])(.*)\2\s*$""")
_LOGGED_FILTER = re.compile(r"""^\s*(name|source_run_id)\s*=\s*(['"])(.*)\2\s*$""")
_ARTIFACTS_URL = re.compile(r"^https?://[^/]+(?:/.*)?/api/2\.0/mlflow-artifacts/artifacts/(.*)$")


class ModelsMixin:
    store: MlflowStore
    registry: RegistryService

    def get_run(self, project: str, run_id: str) -> tuple[Run, str]:
        raise NotImplementedError  # service.py

    # registered models
    def create_registered_model(self, project: str, name: str, user: str) -> Model:
        try:
            self.registry.get_model(project, name)
        except NotFound:
            return self.registry.create_model(project, name, user)
        raise AlreadyExists(f"registered model {name!r} already exists", {"model": name})

    def search_registered_models(self, project: str, filter: str | None) -> list[Model]:
        models = self.registry.list_models(project)
        if not filter:
            return models
        m = _NAME_FILTER.match(filter)
        if m is None:
            raise InvalidArgument(f"registered models are searched by name only here "
                                f"(name = 'x' or name LIKE 'x%'), not {filter[:200]!r}")
        if m[1] == "=":
            return [x for x in models if x.name == m[3]]
        pattern = re.compile("^" + re.escape(m[3]).replace("%", ".*").replace("_", ".") + "$",
                             re.IGNORECASE if m[1].lower() == "ilike" else 0)
        return [x for x in models if pattern.match(x.name)]

    def latest_versions(self, project: str, name: str) -> list[ModelVersion]:
        versions = self.registry.list_versions(project, name)
        return [max(versions, key=lambda v: v.version)] if versions else []

    # versions
    def _source_prefix(self, project: str, source: str, run_id: str | None,
                       model_id: str | None) -> tuple[str, str | None]:
        """The folder of the artifact tree a `source` names, and the run behind it."""
        if model_id or source.startswith("models:/m-"):
            logged = self.get_logged_model(project, model_id or source[len("models:/"):])
            return logged.artifact_root, run_id or logged.source_run_id
        if source.startswith("runs:/"):
            rid, _, sub = source[len("runs:/"):].partition("/")
            _, exp_id = self.get_run(project, rid)
            return "/".join(p for p in (artifact_root(exp_id, rid), sub.strip("/")) if p), rid
        if source.startswith("mlflow-artifacts:"):
            path = source[len("mlflow-artifacts:"):].lstrip("/")
            if not source.startswith("mlflow-artifacts:///") and source.startswith("mlflow-artifacts://"):
                path = path.partition("/")[2]  # mlflow-artifacts://host:port/path
            return path.strip("/"), run_id
        if m := _ARTIFACTS_URL.match(source):
            return m[1].strip("/"), run_id
        raise InvalidArgument(f"model source {source[:200]!r} is not in this server's artifact "
                            "store: log the model with this tracking URI (runs:/, models:/ or "
                            "mlflow-artifacts:/ sources)", {"source": source[:200]})

    def create_model_version(self, project: str, name: str, source: str, run_id: str | None,
                             model_id: str | None, user: str) -> tuple[ModelVersion, str]:
        from modelyard.mlflow_compat.service import clean_path

        prefix, run_id = self._source_prefix(project, source, run_id or None, model_id or None)
        prefix = clean_path(prefix, "model source")
        files = self.store.files_under(project, prefix, MAX_VERSION_FILES + 1)
        if not files:
            raise InvalidArgument(f"no artifacts were logged under {source!r}: log the model "
                                  "first (mlflow.<flavor>.log_model or mlflow.log_artifacts)",
                                  {"source": source[:200]})
        if len(files) > MAX_VERSION_FILES:
            raise InvalidArgument(f"a model version holds at most {MAX_VERSION_FILES} files")
        artifacts = {f.path[len(prefix) + 1:] if prefix else f.path: f.digest for f in files}
        metrics: dict[str, Any] = {}
        if run_id:
            run, _ = self.get_run(project, run_id)
            metrics = dict(run.metrics)
        version = self.registry.register_version(project, name, artifacts, framework="mlflow",
                                                 metrics=metrics, run_id=run_id, user=user)
        self.store.put_version_source(project, name, version.version, source, prefix)
        return version, source

    def version_source(self, project: str, v: ModelVersion) -> str:
        found = self.store.version_source(project, v.model, v.version)
        return found[0] if found else f"models:/{v.model}/{v.version}"

    def download_uri(self, project: str, name: str, version: int) -> str:
        self.registry.get_version(project, name, version)
        found = self.store.version_source(project, name, version)
        if found is None:
            raise InvalidArgument(f"version {version} of {name!r} was not registered through "
                                "MLflow: fetch its files with modelyard's SDK "
                                "(c.registry / GET .../artifacts/{digest})")
        return f"mlflow-artifacts:/{found[1]}"

    # logged models (MLflow 3)
    def create_logged_model(self, project: str, experiment_id: str, name: str,
                            source_run_id: str | None, model_type: str | None,
                            tags: dict[str, str], params: dict[str, str]) -> LoggedModel:
        if source_run_id:
            self.get_run(project, source_run_id)
        return self.store.create_logged_model(project, experiment_id, name[:500] or "model",
                                              source_run_id, model_type, tags, params)

    def get_logged_model(self, project: str, model_id: str) -> LoggedModel:
        if not isinstance(model_id, str) or len(model_id) > 40:
            raise NotFound(f"logged model {str(model_id)[:40]!r} does not exist")
        return self.store.get_logged_model(project, model_id)

    def update_logged_model(self, project: str, model_id: str, status: str | None = None,
                            tags: dict[str, str] | None = None,
                            params: dict[str, str] | None = None) -> LoggedModel:
        self.get_logged_model(project, model_id)
        return self.store.update_logged_model(project, model_id, status, tags, params)

    def search_logged_models(self, project: str, experiment_ids: list[str],
                             filter: str | None, limit: int) -> list[LoggedModel]:
        """Filters: `name = '...'` and `source_run_id = '...'`, joined by AND."""
        wanted: dict[str, str] = {}
        for clause in re.split(r"(?i)\s+and\s+", filter.strip()) if filter and filter.strip() else []:
            m = _LOGGED_FILTER.match(clause)
            if m is None:
                raise InvalidArgument("logged models are searched by name and source_run_id "
                                    f"(name = 'x' AND source_run_id = 'y') here, not "
                                    f"{filter[:200]!r}")  # type: ignore[index]
            wanted[m[1]] = m[3]
        return self.store.search_logged_models(project, experiment_ids, wanted.get("name"),
                                               wanted.get("source_run_id"), limit)
