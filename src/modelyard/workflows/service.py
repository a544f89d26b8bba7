"""Use cases of the workflows component (walking-skeleton placeholder, to be deepened)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.core.db import Database

if TYPE_CHECKING:
    from modelyard.server.platform import Platform


class WorkflowService:
    def __init__(self, db: Database, platform: Platform) -> None:
        self.db = db
        self.platform = platform
