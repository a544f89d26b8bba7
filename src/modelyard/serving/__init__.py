"""Model serving: deployments, an LRU model cache, dynamic batching, canaries, KServe v2."""

from __future__ import annotations

from modelyard.serving.models import Deployment, DeploymentCreate, DeploymentUpdate
from modelyard.serving.service import ServingService

__all__ = ["Deployment", "DeploymentCreate", "DeploymentUpdate", "ServingService"]
