"""The API server: composes every component's router into one FastAPI app."""

from __future__ import annotations

from modelyard.server.app import create_app

__all__ = ["create_app"]
