"""Use cases of the metrics store: buffered ingestion, feedback, queries, drift."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter as _Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import Counter, Gauge

from modelyard.core.db import Database
from modelyard.core.errors import InvalidArgument, NotFound, Unavailable
from modelyard.core.events import EventBus
from modelyard.core.ids import check_name, utcnow
from modelyard.core.settings import MetricsSettings
from modelyard.metrics import alerts
from modelyard.metrics._aggregate import ROLLUP_METRICS, aggregate, aggregate_cells
from modelyard.metrics._limits import about_values, log_apart, problem, store_apart
from modelyard.metrics.alert_store import AlertStore, SqlAlertStore
from modelyard.metrics.models import (
    METRICS,
    AlertEvent,
    AlertRule,
    AlertRuleSpec,
    Drift,
    Event,
    FeatureDrift,
    Feedback,
    InputDrift,
    Point,
    PredictionEvent,
    QueryResult,
    Resolution,
    Series,
)
from modelyard.metrics.store import (
    MetricsStore,
    OutboxMetricsStore,
    Retention,
    SqlMetricsStore,
    to_epoch,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("modelyard.metrics")

MAX_STEPS = 10_000
FLUSH_INTERVAL_S = 0.5
FLUSH_AT = 5_000  # buffered events that wake the flusher early
ALERT_INTERVAL_S = 15.0  # how often the background loop evaluates alert rules
MAX_BUFFER = 1_000_000  # beyond this `record` drops (and counts) events rather than grow
_RESOLUTION_S = {"1m": 60, "1h": 3600}


def open_event_store(db: Database, settings: MetricsSettings, home: Path | None,
                     role: str) -> MetricsStore:
    """The event store a process uses.

    The main server owns an embedded DuckDB file under its data dir (`settings.path`, default
    <home>/metrics/events.duckdb) and imports what replicas leave in the metadata DB. A serving
    replica keeps no state of its own, so it writes packed chunks to the shared metadata DB
    (its outbox). Without a data dir, the directory of a SQLite metadata DB is used; with
    neither (PostgreSQL and no home), and with `store = "database"`, events stay in the
    metadata DB, where that store moves the replicas' chunks. When another process holds the
    file (a second process on the same data dir), this one writes to the outbox too.
    """
    sql = SqlMetricsStore(db)
    if settings.store == "database":
        return SqlMetricsStore(db, owner=role != "serving")
    if role == "serving":
        return OutboxMetricsStore(db)
    path = settings.path
    if path is None:
        if home is None:
            url = db.engine.url
            if url.get_backend_name() != "sqlite" or not url.database \
                    or url.database == ":memory:":
                return sql
            home = Path(url.database).resolve().parent
        path = home / "metrics" / "events.duckdb"
    from modelyard.metrics._duck import DuckDbMetricsStore

    try:
        return DuckDbMetricsStore.shared(path, outbox=sql)
    except Unavailable as e:  # another process owns the file: act as a replica of it
        log.warning("%s; writing prediction events to the metadata DB for its owner to import",
                    e)
        return OutboxMetricsStore(db)


class MetricsService:
    """Prediction events and feedback of models in service, and queries over them.

    `record()` never blocks the caller on storage: events go to an in-memory buffer that a
    background thread writes in bulk (every `FLUSH_INTERVAL_S`, and on `stop()`/`flush()`).
    The same thread runs the store's maintenance (rollups, replica import, retention) every
    `settings.maintenance_interval_s`.
    """

    def __init__(self, db: Database, prometheus: CollectorRegistry,
                 store: MetricsStore | None = None,
                 alert_store: AlertStore | None = None,
                 settings: MetricsSettings | None = None, home: Path | None = None,
                 role: str = "all") -> None:
        self.db = db
        self.settings = settings or MetricsSettings()
        self.retention = Retention(self.settings.raw_retention_days,
                                   self.settings.rollup_1m_retention_days,
                                   self.settings.rollup_1h_retention_days)
        self.store = store or open_event_store(db, self.settings, home, role)
        self._next_maintenance = 0.0
        self.alert_store = alert_store or SqlAlertStore(db)
        self.events = EventBus()  # the platform shares one bus between components
        self._next_alerts = 0.0
        # (project, deployment) -> reference input means, when a caller gives none (the
        # platform hands serving's, computed from the deployed version's training snapshot)
        self.input_reference: Callable[[str, str], list[float]] | None = None
        self._buffer: list[Event] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._stored = Counter("modelyard_metrics_events_stored", "prediction events stored",
                               registry=prometheus)
        self._dropped = Counter("modelyard_metrics_events_dropped",
                                "prediction events dropped because the buffer was full",
                                registry=prometheus)
        self._quarantined = Counter(
            "modelyard_metrics_events_quarantined",
            "prediction events set apart because no store can keep them (logged, dropped)",
            registry=prometheus)
        self._buffered = Gauge("modelyard_metrics_events_buffered",
                               "prediction events waiting to be stored", registry=prometheus)
        self._buffered.set_function(lambda: len(self._buffer))

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        self.store.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep the loop alive; events stay buffered
                log.exception("storing prediction events failed; retrying")
            if time.monotonic() >= self._next_maintenance:
                self._next_maintenance = time.monotonic() + self.settings.maintenance_interval_s
                try:
                    self.maintain()
                except Exception:  # noqa: BLE001 - keep the loop alive
                    log.exception("metrics store maintenance failed; retrying")
            if time.monotonic() >= self._next_alerts:
                self._next_alerts = time.monotonic() + ALERT_INTERVAL_S
                try:
                    self.evaluate_alerts()
                except Exception:  # noqa: BLE001 - keep the loop alive
                    log.exception("evaluating alert rules failed")

    # -- ingestion ------------------------------------------------------------------------------
    def record(self, events: Sequence[Event]) -> None:
        """Hand events over for storage without waiting (each must carry its `project`)."""
        with self._lock:
            room = MAX_BUFFER - len(self._buffer)
            if room < len(events):
                self._dropped.inc(len(events) - max(room, 0))
                events = events[: max(room, 0)]
            self._buffer.extend(events)
            full = len(self._buffer) >= FLUSH_AT
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Store everything buffered now. Events the store cannot keep are set apart (counted
        and logged, never retried: `_limits.py`); when the store itself fails, the events not
        stored go back to the buffer and the error is raised."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                n = self.store.insert_events(batch)
            except Exception as e:
                if not about_values(e):
                    with self._lock:
                        self._buffer[:0] = batch
                    raise
                split = store_apart(batch, self.store.insert_events)
                n = split.stored
                self._stored.inc(n)
                self.set_apart(split.apart, "a flush")
                if split.error is not None:
                    with self._lock:
                        self._buffer[:0] = split.left
                    raise split.error from e
                return n
            self._stored.inc(n)
            return n

    def find(self, project: str, request_id: str) -> list[PredictionEvent]:
        """The events of one request, stored or still buffered (so a lookup right after the
        answer finds it); NotFound when there are none."""
        with self._lock:  # a copy: the flush thread swaps the buffer out
            pending = [e for e in self._buffer if e.project == project and (
                e.request_id == request_id or e.request_id.startswith(f"{request_id}/"))]
        found = self.store.find(project, request_id)
        stored = {(e.request_id, e.shadow) for e in found}
        found += [e if isinstance(e, PredictionEvent) else PredictionEvent.model_construct(
            **e._asdict()) for e in pending if (e.request_id, e.shadow) not in stored]
        if not found:
            raise NotFound(f"no prediction {request_id[:100]!r} in project {project!r} (events "
                           "older than the raw retention are gone)", {"request_id": request_id[:100]})
        return found

    def set_apart(self, events: Sequence[tuple[Any, str]], where: str) -> None:
        """Count and log (one line) events no store can keep; they are dropped."""
        self._quarantined.inc(len(events))
        log_apart(events, where)

    def ingest(self, project: str, events: list[PredictionEvent]) -> int:
        """Store events sent by a remote replica before answering (acknowledged = stored).
        All or nothing: an event no store can keep is refused with the batch."""
        check_name(project, "project")
        for i, e in enumerate(events):
            e.project = project
            why = problem(e)  # validated already over REST; in-process callers too
            if why is not None:
                raise InvalidArgument(f"event {i}: {why}; nothing of the batch was stored",
                                      {"index": i})
        n = self.store.insert_events(events)
        self._stored.inc(n)
        return n

    def maintain(self, now: datetime | None = None) -> dict[str, int]:
        """Roll up new events, import replicas' events and prune past retention, now."""
        self.flush()
        done = self.store.maintain(_naive(now or utcnow()), self.retention)
        if done.get("quarantined"):  # the store logged them; counted here with the rest
            self._quarantined.inc(done["quarantined"])
        return done

    def add_feedback(self, project: str, feedback: list[Feedback]) -> int:
        return self.store.upsert_feedback(project, feedback)

    # -- queries --------------------------------------------------------------------------------
    def query(self, project: str, metric: str, start: datetime, end: datetime,
              step_s: float = 60.0, group_by: str | None = None,
              deployment: str | None = None, include_shadow: bool = False,
              resolution: Resolution = "auto") -> QueryResult:
        """One series per group of `metric` over `[start, end)` in steps of `step_s` seconds.

        Latencies are in milliseconds; percentiles interpolate linearly between closest ranks;
        `error_rate` is the share of `error` and `timeout` outcomes (requests shed with 429
        count in the total only); `accuracy` uses the ok events that have feedback, and so do
        `mae` and `rmse` (a regression model's label and its feedback read as numbers).

        `auto` answers from the coarsest rollup (1h, then 1m) that `start`, `end` and `step_s`
        are all multiples of, plus the raw events not rolled up yet, and from raw events
        otherwise (and always for `accuracy`, `mae`, `rmse`, whose labels arrive later). From rollups, counts,
        rates, means and error rates are exact and percentiles within one latency bucket (5%).
        Raw events are kept `raw_retention_days`, so older windows need aligned queries.
        """
        if metric not in METRICS:
            raise InvalidArgument(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}",
                                  {"field": "metric"})
        if group_by not in (None, "deployment", "model", "version"):
            raise InvalidArgument(
                f"cannot group by {group_by!r}: use deployment, model or version",
                {"field": "group_by"},
            )
        start, end = _naive(start), _naive(end)
        if not end > start:
            raise InvalidArgument("end must be after start", {"field": "end"})
        if not step_s > 0:
            raise InvalidArgument("step_s must be positive", {"field": "step_s"})
        span = (end - start).total_seconds()
        n_steps = math.ceil(span / step_s)
        if n_steps > MAX_STEPS:
            raise InvalidArgument(
                f"{n_steps} steps is too many (limit {MAX_STEPS}): use a larger step_s",
                {"field": "step_s"},
            )
        try:
            self.flush()  # a query sees every event recorded before it
        except Exception as e:
            raise Unavailable("the metrics store cannot store buffered events; retry") from e
        res = self._resolution(resolution, metric, start, end, step_s)
        if res:
            cells = self.store.cells(project, res, start, end, step_s, deployment,
                                     include_shadow, group_by)
            values = aggregate_cells(cells, metric, step_s, n_steps, group_by)
        else:
            cols = self.store.events(project, start, end, deployment, include_shadow)
            values = aggregate(cols, metric, to_epoch(start), step_s, n_steps, group_by)
        times = [start + timedelta(seconds=i * step_s) for i in range(n_steps)]
        series = [
            Series(group={group_by: key} if group_by else {},
                   points=[Point(time=t, value=v) for t, v in zip(times, vals, strict=True)])
            for key, vals in values.items()
        ]
        return QueryResult(metric=metric, start=start, end=end, step_s=step_s,
                           group_by=group_by, series=series,
                           resolution={60: "1m", 3600: "1h"}.get(res, "raw"))

    def _resolution(self, wanted: Resolution, metric: str, start: datetime, end: datetime,
                    step_s: float) -> int:
        """The rollup step (seconds) that answers the query, or 0 for raw events."""
        def fits(r: int) -> bool:
            return (r in self.store.resolutions and metric in ROLLUP_METRICS
                    and step_s % r == 0 and to_epoch(start) % r == 0 and to_epoch(end) % r == 0)

        if wanted == "raw":
            return 0
        if wanted != "auto":
            r = _RESOLUTION_S[wanted]
            if not fits(r):
                raise InvalidArgument(
                    f"{wanted} rollups cannot answer this query: start, end and step_s must be "
                    f"multiples of {r} s, the metric one of {', '.join(ROLLUP_METRICS)}",
                    {"field": "resolution"})
            return r
        return next((r for r in sorted(self.store.resolutions, reverse=True) if fits(r)), 0)

    def drift(self, project: str, deployment: str, reference: dict[str, float], start: datetime,
              end: datetime, threshold: float = 0.2) -> Drift:
        """PSI of the predicted-label distribution in `[start, end)` against `reference`.

        `reference` maps label -> share (normalised here); PSI above `threshold` means drift
        (0.1-0.2 is usually read as a moderate shift, above 0.2 as a significant one).
        """
        if not reference or any(v < 0 for v in reference.values()):
            raise InvalidArgument("reference must map labels to non-negative shares")
        self.flush()
        cols = self.store.events(project, _naive(start), _naive(end), deployment, False)
        counts = _Counter(str(x) for x, o in zip(cols.label, cols.outcome, strict=True)
                          if o == "ok" and x is not None)
        total_ref = sum(reference.values())
        total_live = sum(counts.values())
        if total_live == 0 or total_ref == 0:
            raise InvalidArgument("no predictions in the window (or an empty reference)")
        labels = sorted(set(reference) | set(counts))
        psi = _psi(np.array([reference.get(x, 0.0) / total_ref for x in labels]),
                   np.array([counts.get(x, 0) / total_live for x in labels]))
        return Drift(psi=psi, live_counts=dict(counts),
                     reference={k: v / total_ref for k, v in reference.items()},
                     drifted=psi > threshold, threshold=threshold)

    def input_drift(self, project: str, deployment: str, reference: list[float] | None,
                    start: datetime, end: datetime, bins: int = 10,
                    threshold: float = 0.2) -> InputDrift:
        """PSI of live inputs (each row's mean, as served) against reference values of the
        same statistic, over the reference's quantile bins. Without `reference`, the training
        data of the deployed version (`input_reference`); InvalidArgument naming `reference`
        where there is none."""
        if reference is None:
            reference = self.automatic_reference(project, deployment)
        ref = np.asarray(reference, dtype=np.float64)
        if ref.size < bins or not np.isfinite(ref).all():
            raise InvalidArgument(f"reference needs at least {bins} finite values",
                                  {"field": "reference"})
        self.flush()
        live = self.store.input_means(project, deployment, _naive(start), _naive(end))
        if live.size == 0:
            raise InvalidArgument("no served inputs in the window for this deployment")
        return _binned_drift(ref, live, bins, threshold)

    def automatic_reference(self, project: str, deployment: str) -> list[float]:
        if self.input_reference is None:
            raise InvalidArgument("this server computes no input reference of its own: pass "
                                  "`reference`, per-row means of reference inputs after the "
                                  "model's preprocessing", {"field": "reference"})
        return self.input_reference(project, deployment)

    def feature_drift(self, project: str, deployment: str, reference: dict[str, list[float]],
                      start: datetime, end: datetime, bins: int = 10,
                      threshold: float = 0.2) -> FeatureDrift:
        """`input_drift` per named feature of a tabular model: each feature's served values
        against reference values of that feature (e.g. its column in the training snapshot).
        A feature with no served value in the window is a 400 naming it."""
        if not reference:
            raise InvalidArgument("reference must map feature names to values",
                                  {"field": "reference"})
        self.flush()
        served = self.store.feature_values(project, deployment, _naive(start), _naive(end))
        if not served:
            raise InvalidArgument("no served tabular inputs in the window for this deployment")
        out: dict[str, InputDrift] = {}
        for name, values in reference.items():
            ref = np.asarray(values, dtype=np.float64)
            if ref.size < bins or not np.isfinite(ref).all():
                raise InvalidArgument(f"reference of feature {name!r} needs at least {bins} "
                                      "finite values", {"field": f"reference.{name}"})
            live = np.asarray([f[name] for f in served if isinstance(f.get(name), (int, float))],
                              dtype=np.float64)
            if live.size == 0:
                raise InvalidArgument(f"no served values of feature {name!r} in the window: "
                                      "is it a feature of this deployment's model?",
                                      {"field": f"reference.{name}"})
            out[name] = _binned_drift(ref, live, bins, threshold)
        return FeatureDrift(features=out, drifted=[n for n, d in out.items() if d.drifted],
                            threshold=threshold)

    # -- alert rules ----------------------------------------------------------------------------
    def create_alert(self, project: str, spec: AlertRuleSpec, actor: str) -> AlertRule:
        spec = alerts.check_spec(spec)
        if spec.metric == "input_psi" and spec.reference is None and spec.deployment:
            # refused now, with the reason, rather than reading no_data at every evaluation
            self.automatic_reference(project, spec.deployment)
        return self.alert_store.create_rule(project, spec, actor)

    def list_alerts(self, project: str) -> list[AlertRule]:
        return self.alert_store.rules(project)

    def get_alert(self, project: str, name: str) -> AlertRule:
        return self.alert_store.get_rule(project, name)

    def delete_alert(self, project: str, name: str) -> None:
        self.alert_store.delete_rule(project, name)

    def alert_history(self, project: str, name: str, limit: int = 100) -> list[AlertEvent]:
        return self.alert_store.history(project, name, min(max(limit, 1), 1000))

    def evaluate_alerts(self, project: str | None = None) -> list[AlertRule]:
        """Evaluate every rule (of `project`, or all) now; state changes go to the history."""
        now = utcnow()
        out = []
        for rule in self.alert_store.rules(project):
            state, value, message = alerts.evaluate(self, rule, now)
            out.append(self.alert_store.set_state(rule.id, state, value, now, message))
            if state == "firing" and rule.state != "firing":  # announced once per firing
                self.events.publish("alert.firing", {
                    "project": rule.project, "alert": rule.spec.name,
                    "deployment": rule.spec.deployment, "value": value})
        return out


def _binned_drift(ref: np.ndarray, live: np.ndarray, bins: int, threshold: float) -> InputDrift:
    """PSI of `live` against `ref` over the reference's quantile bins."""
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(x: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(inner, x, side="right"),
                           minlength=inner.size + 1) / x.size

    ref_share, live_share = shares(ref), shares(live)
    psi = _psi(ref_share, live_share)
    return InputDrift(psi=psi, live_rows=int(live.size), bin_edges=inner.tolist(),
                      reference_share=ref_share.tolist(), live_share=live_share.tolist(),
                      drifted=psi > threshold, threshold=threshold)


def _psi(ref: np.ndarray, live: np.ndarray, eps: float = 1e-4) -> float:
    p = np.maximum(ref, eps)
    q = np.maximum(live, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def _naive(t: datetime) -> datetime:
    if t.tzinfo is not None:
        return t.astimezone(UTC).replace(tzinfo=None)
    return t
