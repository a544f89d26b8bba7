"""Client calls of the metrics store."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from modelyard.sdk._http import Transport


def _iso(t: datetime | str) -> str:
    return t.isoformat() if isinstance(t, datetime) else t


class MetricsAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def send_events(self, events: list[dict[str, Any]], project: str | None = None) -> int:
        """Store prediction events (dicts shaped like `PredictionEvent`); returns how many."""
        out = self._t.post(self._t.p("/metrics/events", project), json={"events": events})
        return int(out["accepted"])

    def feedback(self, labels: dict[str, str] | list[dict[str, Any]],
                 project: str | None = None) -> int:
        """True labels by request id: `{request_id: label}` or a list of feedback dicts."""
        items = ([{"request_id": k, "label": v} for k, v in labels.items()]
                 if isinstance(labels, dict) else labels)
        out = self._t.post(self._t.p("/metrics/feedback", project), json={"feedback": items})
        return int(out["accepted"])

    def query(self, metric: str, start: datetime | str, end: datetime | str, step_s: float = 60,
              group_by: str | None = None, deployment: str | None = None,
              include_shadow: bool = False, project: str | None = None) -> dict[str, Any]:
        """`{"metric", "start", "end", "step_s", "group_by", "series": [{"group", "points"}]}`."""
        params: dict[str, Any] = {"metric": metric, "start": _iso(start), "end": _iso(end),
                                  "step_s": step_s, "include_shadow": include_shadow}
        if group_by:
            params["group_by"] = group_by
        if deployment:
            params["deployment"] = deployment
        return self._t.get(self._t.p("/metrics/query", project), params=params)  # type: ignore[no-any-return]

    def drift(self, deployment: str, reference: dict[str, float], start: datetime | str,
              end: datetime | str, threshold: float = 0.2,
              project: str | None = None) -> dict[str, Any]:
        body = {"deployment": deployment, "reference": reference, "start": _iso(start),
                "end": _iso(end), "threshold": threshold}
        return self._t.post(self._t.p("/metrics/drift", project), json=body)  # type: ignore[no-any-return]

    def input_drift(self, deployment: str, reference: list[float] | None,
                    start: datetime | str, end: datetime | str, bins: int = 10,
                    threshold: float = 0.2, project: str | None = None) -> dict[str, Any]:
        """PSI of served inputs (per-row mean) against reference values of the same statistic;
        `reference=None`: the deployed version's training data, as its model sees it."""
        body = {"deployment": deployment, "reference": reference, "start": _iso(start),
                "end": _iso(end), "bins": bins, "threshold": threshold}
        return self._t.post(self._t.p("/metrics/input-drift", project), json=body)  # type: ignore[no-any-return]

    def feature_drift(self, deployment: str, reference: dict[str, list[float]],
                      start: datetime | str, end: datetime | str, bins: int = 10,
                      threshold: float = 0.2, project: str | None = None) -> dict[str, Any]:
        """PSI per named feature of a tabular model's served inputs against reference values."""
        body = {"deployment": deployment, "reference": reference, "start": _iso(start),
                "end": _iso(end), "bins": bins, "threshold": threshold}
        return self._t.post(self._t.p("/metrics/feature-drift", project), json=body)  # type: ignore[no-any-return]

    def create_alert(self, name: str, metric: str, threshold: float, op: str = ">",
                     window_s: float = 300, deployment: str | None = None,
                     reference: list[float] | dict[str, float] | None = None,
                     action: str = "none", project: str | None = None) -> dict[str, Any]:
        """A rule that fires while `metric` over the last `window_s` seconds `op` `threshold`.
        `action="rollback"` makes `deployment` serve its previous version when it fires."""
        body = {"name": name, "metric": metric, "threshold": threshold, "op": op,
                "window_s": window_s, "deployment": deployment, "reference": reference,
                "action": action}
        return self._t.post(self._t.p("/metrics/alerts", project), json=body)  # type: ignore[no-any-return]

    def alerts(self, project: str | None = None) -> list[dict[str, Any]]:
        return self._t.get(self._t.p("/metrics/alerts", project))  # type: ignore[no-any-return]

    def alert(self, name: str, project: str | None = None) -> dict[str, Any]:
        return self._t.get(self._t.p(f"/metrics/alerts/{quote(name, safe='')}", project))  # type: ignore[no-any-return]

    def delete_alert(self, name: str, project: str | None = None) -> None:
        self._t.delete(self._t.p(f"/metrics/alerts/{quote(name, safe='')}", project))

    def evaluate_alerts(self, project: str | None = None) -> list[dict[str, Any]]:
        return self._t.post(self._t.p("/metrics/alerts/evaluate", project))  # type: ignore[no-any-return]

    def alert_history(self, name: str, limit: int = 100,
                      project: str | None = None) -> list[dict[str, Any]]:
        path = self._t.p(f"/metrics/alerts/{quote(name, safe='')}/history", project)
        return self._t.get(path, params={"limit": limit})  # type: ignore[no-any-return]
