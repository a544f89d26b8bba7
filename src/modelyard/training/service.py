"""Use cases of the training component (walking-skeleton placeholder, to be deepened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.db import Database

if TYPE_CHECKING:
    from modelyard.core.blobs import ContentStore
    from modelyard.core.settings import Settings
    from modelyard.server.service import AuthService
    from modelyard.datasets.service import DatasetService
    from modelyard.registry.service import RegistryService


class TrainingService:
    def __init__(self, db: Database, settings: Settings, auth: AuthService, cas: ContentStore, datasets: DatasetService, registry: RegistryService) -> None:
        self.db = db
        self.settings = settings
        self.auth = auth
        self.cas = cas
        self.datasets = datasets
        self.registry = registry
