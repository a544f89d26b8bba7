"""Use cases of the metrics component (walking-skeleton placeholder, to be deepened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.db import Database

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class MetricsService:
    def __init__(self, db: Database, prometheus: CollectorRegistry) -> None:
        self.db = db
        self.prometheus = prometheus
