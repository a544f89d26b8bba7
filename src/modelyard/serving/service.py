"""Use cases of the serving component (walking-skeleton placeholder, to be deepened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.db import Database

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from modelyard.core.settings import ServingSettings
    from modelyard.registry.service import RegistryService
    from modelyard.metrics.service import MetricsService


class ServingService:
    def __init__(self, db: Database, settings: ServingSettings, registry: RegistryService, metrics: MetricsService, prometheus: CollectorRegistry) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.prometheus = prometheus
