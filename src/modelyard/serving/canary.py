"""Traffic splits and the automatic canary rollback rule."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from modelyard.core.errors import InvalidArgument
from modelyard.core.ids import utcnow
from modelyard.metrics import MAX_VERSION
from modelyard.serving.models import Deployment

if TYPE_CHECKING:
    from modelyard.metrics.service import MetricsService


def check_traffic(traffic: dict[str, int] | None) -> dict[str, int] | None:
    """A valid split: version numbers -> non-negative percents summing to 100."""
    if traffic is None:
        return None
    if not traffic:
        raise InvalidArgument("traffic needs at least one version; send null to route every "
                              "request to model_ref", {"field": "traffic"})
    for k, v in traffic.items():
        if not k.isdigit() or not 1 <= int(k) <= MAX_VERSION:
            raise InvalidArgument(f"traffic key {k!r} is not a version number (e.g. \"3\")",
                                  {"field": "traffic"})
        if v < 0:
            raise InvalidArgument(f"traffic share of version {k} is negative",
                                  {"field": "traffic"})
    if sum(traffic.values()) != 100:
        raise InvalidArgument(f"traffic shares sum to {sum(traffic.values())}, not 100",
                              {"field": "traffic"})
    return {str(int(k)): v for k, v in traffic.items()}


def pick(traffic: dict[str, int]) -> int:
    versions = [int(k) for k, w in traffic.items() if w > 0]
    weights = [w for w in traffic.values() if w > 0]
    return random.choices(versions, weights)[0]


def stable_version(dep: Deployment, resolved: int | None) -> int:
    """The version a rollback returns to: model_ref's if it is in the split, else the largest."""
    assert dep.traffic
    if resolved is not None and str(resolved) in dep.traffic:
        return resolved
    return int(max(dep.traffic.items(), key=lambda kv: (kv[1], -int(kv[0])))[0])


def breach(dep: Deployment, stable: int, metrics: MetricsService) -> tuple[int, str] | None:
    """(canary version, reason) when a canary breaks the deployment's rollback rule."""
    rule = dep.rollback
    if rule is None or not dep.traffic:
        return None
    end = utcnow() + timedelta(seconds=1)
    start = end - timedelta(seconds=rule.window_s)

    def per_version(metric: str) -> dict[int, float | None]:
        res = metrics.query(dep.project, metric, start, end, step_s=rule.window_s + 1,
                            group_by="version", deployment=dep.name)
        return {int(s.group["version"]): s.points[0].value for s in res.series}

    counts = per_version("count")
    canaries = [int(v) for v, w in dep.traffic.items() if w > 0 and int(v) != stable]
    checks: list[tuple[str, float | None, str]] = []
    if rule.max_error_rate is not None:
        checks.append(("error_rate", rule.max_error_rate, "error rate"))
    if rule.max_p95_ms is not None:
        checks.append(("latency_p95", rule.max_p95_ms, "p95 latency (ms)"))
    for metric, limit, what in checks:
        values = per_version(metric)
        for v in canaries:
            n = counts.get(v) or 0
            value = values.get(v)
            if n >= rule.min_requests and value is not None and limit is not None and \
                    value > limit:
                return v, (f"canary version {v} {what} {value:.4g} is above {limit:g} over the "
                           f"last {rule.window_s:g}s ({int(n)} requests)")
    return None
