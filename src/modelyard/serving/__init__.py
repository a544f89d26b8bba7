"""Model serving: deployments, an LRU model cache, dynamic batching, canaries, KServe v2.

How a request is answered: the deployment (cached ~1 s) picks a version (its traffic split, or
its `model_ref` resolved through the registry, re-resolved every ~2 s), the model cache loads it
on demand within `serving.memory_budget_mb`, and the version's batcher runs it with others in a
thread pool (ONNX Runtime releases the GIL, so batches run on every core at once).

Scaling out: a replica is just another `modelyard server` process with the same
`MODELYARD_DATABASE_URL` and blob store (S3 or a shared directory). Replicas keep no state of
their own beyond their caches: put N of them behind any HTTP load balancer (round robin is
enough), probe `/v2/health/ready`, and scrape each one's `/metrics`. Deployment changes and alias
moves reach every replica within the cache lifetimes above; prediction events from all replicas
land in the one metrics store.
"""

from __future__ import annotations

from modelyard.serving._reference import InputReferences
from modelyard.serving.models import Deployment, DeploymentCreate, DeploymentUpdate
from modelyard.serving.service import ServingService

__all__ = ["Deployment", "DeploymentCreate", "DeploymentUpdate", "InputReferences",
           "ServingService"]
