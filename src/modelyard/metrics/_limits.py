"""What the event stores can keep, and storing a batch around the events they cannot.

Every store keeps a version as a 32-bit integer (DuckDB INTEGER, PostgreSQL integer), times
as naive UTC within years 1-9999, names within their column widths (PostgreSQL enforces
them) and text without NUL (PostgreSQL refuses it). `PredictionEvent` refuses anything else
at the API edge; `problem` says the same of an event built inside the server (`EventRow`,
not validated, for speed), which only the slow path below looks at.

The rule, for the flush of buffered events and for the import of replicas' events alike:
one event the store cannot keep never holds up another. A batch the store refuses for its
values is split: events with a `problem` are set apart, the rest stored, and what still fails
is halved until the single events the store refuses are found. Those are set apart too
(counted and logged by the caller, never retried). A failure that is not about values (the
store is down, locked, out of disk) sets nothing apart: the caller keeps the events.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy.exc

from modelyard.core.errors import ModelyardError

MAX_VERSION = 2**31 - 1  # model versions are 32-bit integers in every store
# No prediction takes a day; a larger figure is a unit mix-up or an attack, and past ~1e300
# the rollups' latency buckets (`_hist.py`) overflow. Queries read stored ones at this bound.
MAX_LATENCY_MS = 86_400_000.0
NAME_MAX = 100  # project, deployment, model, request id (String(100) columns)
LABEL_MAX = 200
OUTCOMES = ("ok", "error", "timeout", "rejected")

E = TypeVar("E")
log = logging.getLogger("modelyard.metrics")


def utc_naive(t: datetime) -> datetime:
    """`t` as naive UTC; ValueError when that falls outside years 1-9999."""
    if t.tzinfo is None:
        return t
    try:
        return t.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"time {t.isoformat()} is outside years 1-9999 in UTC") from None


def _text(name: str, v: Any, limit: int, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if type(v) is not str:
        return f"{name} is {type(v).__name__}, not text"
    if len(v) > limit:
        return f"{name} is longer than {limit} characters"
    if "\x00" in v:
        return f"{name} holds a NUL character"
    return None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def problem(e: Any) -> str | None:
    """Why no store can keep the event `e` (the first reason found), or None."""
    for name in ("project", "deployment", "model", "request_id"):
        if (why := _text(name, getattr(e, name), NAME_MAX)) is not None:
            return why
    if (why := _text("label", e.label, LABEL_MAX, optional=True)) is not None:
        return why
    v = e.version
    if type(v) is not int or not 0 <= v <= MAX_VERSION:
        return f"version {v!r} is not an integer in 0..{MAX_VERSION}"
    if not isinstance(e.time, datetime):
        return f"time is {type(e.time).__name__}, not a datetime"
    try:
        utc_naive(e.time)
    except ValueError as err:
        return str(err)
    lat = e.latency_ms
    if not _number(lat) or not 0 <= lat <= MAX_LATENCY_MS:  # NaN fails both comparisons
        return f"latency_ms {lat!r} is not a number in 0..{MAX_LATENCY_MS:.0f}"
    if e.confidence is not None and not _number(e.confidence):
        return f"confidence is {type(e.confidence).__name__}, not a number"
    if e.outcome not in OUTCOMES:
        return f"outcome {e.outcome!r} is not one of {', '.join(OUTCOMES)}"
    if type(e.shadow) is not bool:
        return f"shadow is {type(e.shadow).__name__}, not a boolean"
    if e.input_summary is not None and not isinstance(e.input_summary, dict):
        return f"input_summary is {type(e.input_summary).__name__}, not an object"
    return None


def summary_mean(summary: Any) -> float | None:
    """The finite `mean` of an input summary, or None (drift reads only these)."""
    m = summary.get("mean") if isinstance(summary, dict) else None
    if not isinstance(m, (int, float)) or isinstance(m, bool):
        return None
    try:
        f = float(m)
    except OverflowError:  # an integer past the float range
        return None
    return f if math.isfinite(f) else None


def about_values(exc: BaseException) -> bool:
    """Whether a store refused a batch for the values in it (so some event of it will never
    be stored), not because the store itself failed."""
    if isinstance(exc, ModelyardError) and exc.__cause__ is not None:
        return about_values(exc.__cause__)  # the database's error, translated (core/db.py)
    if isinstance(exc, sqlalchemy.exc.StatementError):
        if isinstance(exc, (sqlalchemy.exc.DataError, sqlalchemy.exc.IntegrityError)):
            return True
        return isinstance(exc.orig, (ValueError, TypeError, OverflowError))
    # Arrow's conversion errors are ValueError/TypeError; DuckDB's are DataError or, for a
    # constraint, IntegrityError (its IO and transaction errors are OperationalError)
    import duckdb

    return isinstance(exc, (ValueError, TypeError, ArithmeticError, duckdb.DataError,
                            duckdb.IntegrityError))


@dataclass
class Split(Generic[E]):
    """What `store_apart` did: stored count, events set apart (with why), and, when the
    store failed for another reason, that error and the events not stored yet."""

    stored: int = 0
    apart: list[tuple[E, str]] = field(default_factory=list)
    error: BaseException | None = None
    left: list[E] = field(default_factory=list)


def store_apart(events: Sequence[E], put: Callable[[Sequence[E]], int],
                check: Callable[[E], str | None] = problem) -> Split[E]:
    """Store what `put` accepts of `events` after it refused them together (see above)."""
    out: Split[E] = Split()
    fine: list[E] = []
    for e in events:
        why = check(e)
        if why is None:
            fine.append(e)
        else:
            out.apart.append((e, why))
    pending = [fine]  # depth first, in order, so `left` keeps the events' order
    while pending:
        part = pending.pop()
        if not part:
            continue
        try:
            out.stored += put(part)
        except Exception as exc:  # noqa: BLE001 - sorted by `about_values`
            if not about_values(exc):
                out.error = exc
                out.left = [e for p in (part, *reversed(pending)) for e in p]
                return out
            if len(part) == 1:
                out.apart.append((part[0], f"the store refused it: {type(exc).__name__}: "
                                  f"{str(exc)[:200]}"))
            else:
                mid = len(part) // 2
                pending += [part[mid:], part[:mid]]
    return out


def log_apart(events: Sequence[tuple[Any, str]], where: str) -> None:
    """The one log line of a pass that set events apart: how many, the first and why."""
    if not events:
        return
    first, why = events[0]
    log.warning("set apart %d prediction event(s) the metrics store cannot keep, in %s "
                "(dropped, counted in modelyard_metrics_events_quarantined_total): the "
                "first, request %r of deployment %r: %s", len(events), where,
                str(getattr(first, "request_id", "?"))[:100],
                str(getattr(first, "deployment", "?"))[:100], why)


def converted(events: Sequence[E], convert: Callable[[Sequence[E]], Any]) -> \
        tuple[list[Any], list[tuple[E, str]]]:
    """`convert` of the events that pass `problem`, in parts where a value still trips it
    (halved down to the culprits); returns the converted parts and the events set apart."""
    parts: list[Any] = []

    def put(part: Sequence[E]) -> int:
        parts.append(convert(part))
        return len(part)

    split = store_apart(events, put)
    if split.error is not None:  # a conversion fails only for values: nothing else to wait for
        raise split.error
    return parts, split.apart
