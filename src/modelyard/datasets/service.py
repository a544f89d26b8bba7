"""Use cases of the datasets component (walking-skeleton placeholder, to be deepened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.db import Database

if TYPE_CHECKING:
    from modelyard.core.blobs import BlobStore
    from modelyard.registry.service import RegistryService


class DatasetService:
    def __init__(self, db: Database, blobs: BlobStore, registry: RegistryService) -> None:
        self.db = db
        self.blobs = blobs
        self.registry = registry
