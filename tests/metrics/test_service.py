"""The metrics store: what is recorded comes back exactly from queries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import InvalidArgument, PermissionDenied
from modelyard.core.settings import Settings
from modelyard.metrics.models import PredictionEvent
from modelyard.sdk.client import Client
from modelyard.server.app import create_app
from tests.conftest import Team, bearer

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _events(n: int, version: int, latencies: np.ndarray, errors: int = 0,
            deployment: str = "digits", start: datetime = T0) -> list[PredictionEvent]:
    out = []
    for i in range(n):
        out.append(PredictionEvent(
            project="alpha", deployment=deployment, model="digits-cnn", version=version,
            time=start + timedelta(seconds=i % 120), latency_ms=float(latencies[i]),
            outcome="error" if i < errors else "ok", label=str(i % 10),
            confidence=0.9, request_id=f"req-{version}-{i}",
        ))
    return out


def test_recorded_events_give_exact_counts_and_percentiles(api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.metrics  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    lat3 = rng.gamma(2.0, 5.0, size=300)
    lat4 = rng.gamma(2.0, 9.0, size=50)
    svc.record(_events(300, 3, lat3, errors=6))
    svc.record(_events(50, 4, lat4, errors=5))

    out = client.metrics.query("count", T0, T0 + timedelta(minutes=2), step_s=60,
                               group_by="version")
    counts = {s["group"]["version"]: [p["value"] for p in s["points"]] for s in out["series"]}
    # events spread over seconds 0..119: first minute holds i%120 < 60
    c3 = [sum(1 for i in range(300) if i % 120 < 60), sum(1 for i in range(300) if i % 120 >= 60)]
    assert counts == {"3": c3, "4": [50, 0]}

    for metric, q in [("latency_p50", 50), ("latency_p95", 95), ("latency_p99", 99)]:
        # minute-aligned: answered by the 1-minute rollups, within one latency bucket (5%)
        out = client.metrics.query(metric, T0, T0 + timedelta(minutes=2), step_s=120,
                                   group_by="version")
        assert out["resolution"] == "1m"
        got = {s["group"]["version"]: s["points"][0]["value"] for s in out["series"]}
        assert got["3"] == pytest.approx(float(np.percentile(lat3, q)), rel=0.05)
        assert got["4"] == pytest.approx(float(np.percentile(lat4, q)), rel=0.05)
        # from raw events: exact
        raw = svc.query("alpha", metric, T0, T0 + timedelta(minutes=2), step_s=120,
                        group_by="version", resolution="raw")
        got = {s.group["version"]: s.points[0].value for s in raw.series}
        assert got["3"] == pytest.approx(float(np.percentile(lat3, q)))
        assert got["4"] == pytest.approx(float(np.percentile(lat4, q)))

    out = client.metrics.query("error_rate", T0, T0 + timedelta(minutes=2), step_s=120,
                               group_by="version")
    got = {s["group"]["version"]: s["points"][0]["value"] for s in out["series"]}
    assert got == {"3": pytest.approx(6 / 300), "4": pytest.approx(5 / 50)}

    out = client.metrics.query("latency_mean", T0, T0 + timedelta(minutes=2), step_s=120)
    assert out["series"][0]["points"][0]["value"] == pytest.approx(
        float(np.mean(np.concatenate([lat3, lat4]))))


def test_feedback_gives_exact_accuracy_per_version(api: TestClient, client: Client) -> None:
    events = _events(40, 1, np.ones(40)) + _events(20, 2, np.ones(20))
    assert client.metrics.send_events([e.model_dump(mode="json") for e in events]) == 60
    truth = {}
    for e in events[:40]:  # version 1: 30 of 40 right
        truth[e.request_id] = e.label if int(e.request_id.rsplit("-", 1)[1]) < 30 else "wrong"
    for e in events[40:50]:  # version 2: feedback for 10 of 20, 9 right
        truth[e.request_id] = e.label if e.request_id != "req-2-0" else "wrong"
    assert client.metrics.feedback(truth) == 50
    out = client.metrics.query("accuracy", T0, T0 + timedelta(hours=1), step_s=3600,
                               group_by="version")
    got = {s["group"]["version"]: s["points"][0]["value"] for s in out["series"]}
    assert got == {"1": pytest.approx(30 / 40), "2": pytest.approx(9 / 10)}
    # a later label for the same request replaces the first
    client.metrics.feedback({"req-1-39": events[39].label or ""})
    out = client.metrics.query("accuracy", T0, T0 + timedelta(hours=1), step_s=3600,
                               group_by="version")
    got = {s["group"]["version"]: s["points"][0]["value"] for s in out["series"]}
    assert got["1"] == pytest.approx(31 / 40)


def test_query_filters_by_deployment_and_window(api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.metrics  # type: ignore[attr-defined]
    svc.record(_events(10, 1, np.ones(10), deployment="a"))
    svc.record(_events(7, 1, np.ones(7), deployment="b"))
    svc.record(_events(5, 1, np.ones(5), deployment="a", start=T0 + timedelta(hours=2)))
    out = client.metrics.query("count", T0, T0 + timedelta(hours=1), step_s=3600,
                               group_by="deployment")
    got = {s["group"]["deployment"]: s["points"][0]["value"] for s in out["series"]}
    assert got == {"a": 10, "b": 7}
    out = client.metrics.query("count", T0, T0 + timedelta(hours=3), step_s=3600, deployment="a")
    assert [p["value"] for p in out["series"][0]["points"]] == [10, 0, 5]


def test_bad_queries_are_rejected_with_the_reason(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="metric"):
        client.metrics.query("median", T0, T0 + timedelta(hours=1))
    with pytest.raises(InvalidArgument, match="end must be after start"):
        client.metrics.query("count", T0, T0 - timedelta(hours=1))
    with pytest.raises(InvalidArgument, match="too many"):
        client.metrics.query("count", T0, T0 + timedelta(days=30), step_s=1)


def test_viewer_queries_but_cannot_send_events(api: TestClient, team: Team) -> None:
    viewer = Client(token=team.viewer, project="alpha", http=api)
    out = viewer.metrics.query("count", T0, T0 + timedelta(hours=1), step_s=3600)
    assert out["series"][0]["points"][0]["value"] == 0
    with pytest.raises(PermissionDenied):
        viewer.metrics.send_events([])
    r = api.get("/api/v1/projects/alpha/metrics/query", headers=bearer(team.outsider),
                params={"metric": "count", "start": T0.isoformat(),
                        "end": (T0 + timedelta(hours=1)).isoformat()})
    assert r.status_code == 404


def test_shifted_prediction_distribution_drifts(api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.metrics  # type: ignore[attr-defined]
    reference = {str(d): 0.1 for d in range(10)}
    svc.record(_events(200, 1, np.ones(200), deployment="steady"))  # labels cycle 0..9
    shifted = _events(200, 1, np.ones(200), deployment="shifted")
    for i, e in enumerate(shifted):
        e.label = "1" if i % 2 else str(i % 10)
    svc.record(shifted)
    end = T0 + timedelta(hours=1)
    assert not client.metrics.drift("steady", reference, T0, end)["drifted"]
    assert client.metrics.drift("shifted", reference, T0, end)["drifted"]


def test_stop_stores_buffered_events(api: TestClient) -> None:
    platform = api.app.state.platform  # type: ignore[attr-defined]
    svc = platform.metrics
    svc.record(_events(25, 1, np.ones(25)))
    svc.stop()
    with pytest.raises(InvalidArgument):
        svc.query("alpha", "count", T0, T0)
    cols = svc.store.events("alpha", T0, T0 + timedelta(hours=1), None, False)
    assert len(cols) == 25


def test_events_survive_a_server_restart(settings: Settings) -> None:
    """Acknowledged REST events are stored at once; buffered ones are written on shutdown."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        token = settings.resolved_admin_token_file.read_text().strip()
        c = Client(token=token, project="alpha", http=api)
        c.create_project("alpha")
        c.metrics.send_events([e.model_dump(mode="json")
                               for e in _events(12, 1, np.ones(12), deployment="rest")])
        api.app.state.platform.metrics.record(  # type: ignore[attr-defined]
            _events(8, 1, np.ones(8), deployment="buffered"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        c = Client(token=token, project="alpha", http=api)
        out = c.metrics.query("count", T0, T0 + timedelta(hours=1), step_s=3600,
                              group_by="deployment")
        got = {s["group"]["deployment"]: s["points"][0]["value"] for s in out["series"]}
        assert got == {"buffered": 8, "rest": 12}


def test_events_out_of_the_stores_range_are_refused_and_none_of_the_batch_is_kept(
        api: TestClient, client: Client, admin_token: str) -> None:
    good = {"deployment": "d", "model": "m", "version": 1, "latency_ms": 3.0,
            "request_id": "r1", "time": T0.isoformat()}
    bad_values = [("version", 2**40), ("version", -1), ("version", 10**25),
                  ("latency_ms", 1e308), ("latency_ms", -1.0), ("latency_ms", "Infinity"),
                  ("latency_ms", "NaN"), ("confidence", "NaN"), ("label", "a\u0000b"),
                  ("time", "0001-01-01T00:00:00+05:00")]
    for field, value in bad_values:
        # raw JSON: Python's parser on the server reads NaN and Infinity as floats
        bad = json.dumps({**good, "request_id": "r2", field: value})
        if value in ("NaN", "Infinity"):
            bad = bad.replace(f'"{value}"', value)
        r = api.post("/api/v1/projects/alpha/metrics/events",
                     headers={**bearer(admin_token), "content-type": "application/json"},
                     content=f'{{"events": [{json.dumps(good)}, {bad}]}}')
        assert r.status_code == 400, (field, value, r.text)
        assert field in r.json()["error"]["message"], r.text
    out = client.metrics.query("count", T0, T0 + timedelta(hours=1), step_s=3600)
    assert out["series"][0]["points"][0]["value"] == 0
