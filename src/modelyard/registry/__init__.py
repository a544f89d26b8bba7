"""The metadata and artifacts store: runs, metric series, artifacts, model versions, lineage.

The domain objects import light (the SDK uses them in job processes); the service is loaded
on first use.
"""

from __future__ import annotations

from typing import Any

from modelyard.registry.models import (
    AliasMove,
    Artifact,
    LineageEdge,
    LineageGraph,
    LineageNode,
    MetricPoint,
    Model,
    ModelVersion,
    Run,
    RunSearchResult,
)

__all__ = [
    "AliasMove",
    "Artifact",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "MetricPoint",
    "Model",
    "ModelVersion",
    "RegistryService",
    "Run",
    "RunSearchResult",
    "parse_node",
    "parse_ref",
]


def __getattr__(name: str) -> Any:
    if name in ("RegistryService", "parse_node", "parse_ref"):
        from modelyard.registry import service

        return getattr(service, name)
    raise AttributeError(f"module 'modelyard.registry' has no attribute {name!r}")
