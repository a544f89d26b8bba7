"""Rolling a deployment back on an alert: which version it goes back to, and the change.

An alert rule with `action: rollback` (metrics) announces `alert.firing` with that action; the
serving service answers by making the deployment serve its previous version at once:

- an open canary (traffic split over several versions) goes back to its stable version, as the
  canary's own rollback rule does;
- otherwise the version it served before its current one gets all the traffic: for a
  deployment on an alias, the version that alias named before it moved to the current one;
  for one on a fixed version, the version of its previous `model_ref`.

The model's aliases are left alone (the registry's record of what was promoted stays true,
and other deployments on the alias are not touched); the deployment is pinned to the old
version by its traffic until someone sets `traffic` back to null. Every outcome, a rollback
or the reason there was none, is an event of the deployment.
"""

from __future__ import annotations

from typing import Any

from modelyard.core.errors import ModelyardError
from modelyard.registry.service import RegistryService
from modelyard.serving import canary
from modelyard.serving.models import Deployment
from modelyard.serving.store import DeploymentStore


def previous_version(dep: Deployment, current: int, registry: RegistryService,
                     store: DeploymentStore) -> int | None:
    """The version `dep` served before `current`, or None when nothing says."""
    model, _, ref = dep.model_ref.partition("@")
    if not ref.isdigit():
        try:
            moves = registry.alias_history(dep.project, model, ref)  # newest first
        except ModelyardError:
            moves = []
        for m in moves:
            if m.to_version == current and m.from_version not in (None, current):
                return m.from_version
    for e in store.events(dep.project, dep.name, 1000):  # newest first
        old_ref = str(e.details.get("model_ref") or "")
        old_model, _, old = old_ref.partition("@")
        if old_model == model and old.isdigit() and int(old) != current:
            return int(old)
    return None


def plan(dep: Deployment, resolved: int | None, registry: RegistryService,
         store: DeploymentStore) -> tuple[dict[str, int] | None, str]:
    """(traffic to set, what it does), or (None, why nothing can be done)."""
    live = [int(v) for v, w in (dep.traffic or {}).items() if w > 0]
    if len(live) >= 2:
        stable = canary.stable_version(dep, resolved)
        return {str(stable): 100}, f"canary stopped: all traffic back to version {stable}"
    current = live[0] if live else resolved
    if current is None:
        return None, "its current version cannot be resolved"
    before = previous_version(dep, current, registry, store)
    if before is None:
        return None, f"it serves version {current} and no earlier version is known"
    return {str(before): 100}, f"all traffic from version {current} back to version {before}"


def details(dep: Deployment, traffic: dict[str, int], alert: str) -> dict[str, Any]:
    return {"from_traffic": dep.traffic, "to_traffic": traffic, "alert": alert,
            "traffic": traffic}
