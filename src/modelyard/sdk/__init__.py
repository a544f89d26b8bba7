"""The Python client of the modelyard API."""

from __future__ import annotations

from modelyard.sdk.client import Client

__all__ = ["Client"]
