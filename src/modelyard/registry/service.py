"""Use cases of the registry component (walking-skeleton placeholder, to be deepened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.db import Database

if TYPE_CHECKING:
    from modelyard.core.blobs import ContentStore


class RegistryService:
    def __init__(self, db: Database, cas: ContentStore) -> None:
        self.db = db
        self.cas = cas
