"""The composition root: builds every component's service once, in dependency order."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry

from modelyard.core.blobs import ContentStore, open_blob_store
from modelyard.core.db import Database
from modelyard.core.events import EventBus
from modelyard.core.private import private_dir, private_files
from modelyard.core.settings import Settings
from modelyard.server.service import AuthService
from modelyard.server.store import SqlAuthStore

log = logging.getLogger("modelyard.server")


class Platform:
    """Every service of one modelyard process; `start()` migrates and starts background loops."""

    def __init__(self, settings: Settings) -> None:
        from modelyard.datasets.service import DatasetService
        from modelyard.hpo.service import HpoService
        from modelyard.metrics.service import MetricsService
        from modelyard.mlflow_compat.service import MlflowService
        from modelyard.registry.service import RegistryService
        from modelyard.serving import InputReferences
        from modelyard.serving.service import ServingService
        from modelyard.training.service import TrainingService
        from modelyard.workflows.service import WorkflowService

        self.settings = settings
        self.ready = False
        self.prometheus = CollectorRegistry()
        # The data dir first, 0700, before anything below creates a folder inside it.
        private_dir(settings.home)
        self.db = Database(settings.resolved_database_url)
        self.blobs = open_blob_store(settings)
        self.cas = ContentStore(self.blobs)
        self.auth = AuthService(SqlAuthStore(self.db))
        self.registry = RegistryService(self.db, self.cas)
        self.mlflow = MlflowService(self.db, self.registry)  # MLflow's API over the registry
        self.datasets = DatasetService(self.db, self.blobs, self.registry)
        self.metrics = MetricsService(self.db, self.prometheus, settings=settings.metrics,
                                      home=settings.home, role=settings.role)
        self.training = TrainingService(
            self.db, settings, self.auth, self.cas, self.datasets, self.registry
        )
        self.hpo = HpoService(self.db, settings, self.training, self.datasets, self.registry)
        self.serving = ServingService(
            self.db, settings.serving, self.registry, self.metrics, self.prometheus
        )
        self.workflows = WorkflowService(self.db, self)
        self._wire_lineage()
        # input drift's reference when none is given: the deployed version's training data
        self.metrics.input_reference = InputReferences(
            self.registry, self.serving.deployed_version, self.datasets.sample_inputs)
        # Components announce commits, alias moves and job ends; triggers and the HPO
        # controller react at once (their own polling stays as the safety net).
        self.events = EventBus()
        self.datasets.events = self.events
        self.registry.events = self.events
        self.metrics.events = self.events
        self.training.events = self.events
        self.events.subscribe(self.workflows.on_event)
        self.events.subscribe(self.hpo.on_event)
        self.events.subscribe(self.serving.on_event)
        self._loops: list[Any] = [self.metrics, self.training, self.hpo, self.serving,
                                  self.workflows]
        if settings.role == "serving":  # a replica serves; the main server schedules and runs
            self._loops = [self.metrics, self.serving]

    def _wire_lineage(self) -> None:
        """The registry's guards and lineage walk learn of deployments, predictions, datasets,
        jobs and studies through their owners' services (issue 21)."""
        from modelyard.server import lineage_sources as src
        from modelyard.serving._lineage import ServingLineage

        serving = ServingLineage(self.serving.store, self.registry, self.metrics)
        self.registry.deployments = serving
        self.registry.lineage_sources.update({
            "deployment": serving.deployment_source(),
            "prediction": serving.prediction_source(),
            "dataset_snapshot": src.SnapshotSource(self.datasets),
            "dataset_version": src.DatasetVersionSource(self.datasets),
            "job": src.JobSource(self.training),
            "study": src.StudySource(self.hpo),
        })

    def start(self) -> None:
        private_dir(self.settings.home)
        private_files(self.settings.resolved_admin_token_file)  # a copy made with cp, say
        self.db.migrate()
        token = self.auth.bootstrap(self.settings.resolved_admin_token_file)
        if token:
            log.warning("first start: admin token written to %s",
                        self.settings.resolved_admin_token_file)
        if self.settings.role != "serving":  # work acknowledged before a restart, not a loop
            self.datasets.start()
        if self.settings.background:
            for svc in self._loops:
                start = getattr(svc, "start", None)
                if start:
                    start()
        self.ready = True

    def stop(self) -> None:
        self.ready = False
        for svc in reversed(self._loops):
            stop = getattr(svc, "stop", None)
            if stop:
                try:
                    stop()
                except Exception:  # noqa: BLE001 - keep stopping the others
                    log.exception("stopping %s failed", type(svc).__name__)
        self.datasets.stop()
        self.db.dispose()
