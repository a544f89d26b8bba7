"""MLflow's tracking API on modelyard: the `mlflow` client logs runs, metrics, artifacts and
model versions into the registry (see README, "Logging from MLflow code")."""

from __future__ import annotations

from typing import Any

__all__ = ["MlflowService"]


def __getattr__(name: str) -> Any:
    if name == "MlflowService":
        from modelyard.mlflow_compat.service import MlflowService

        return MlflowService
    raise AttributeError(f"module 'modelyard.mlflow_compat' has no attribute {name!r}")
