"""The packed outbox: serving replicas' prediction events, one `metrics_outbox` row per chunk.

Why: a replica that writes one `metrics_events` row per event spends ~15 µs of CPU per event
on SQLite (more on PostgreSQL), in its serving process. Packed column-wise into one orjson
payload per chunk of up to `CHUNK` events, an event costs about a tenth of that.

Who takes the chunks, each exactly once:
  * the DuckDB store that owns the events (`_duck.py`), as it imports `metrics_events` rows:
    the append and the list of appended batch ids commit together in DuckDB, then those
    chunks are deleted here, and an interrupted pass finishes the delete first;
  * a SQL owner (`SqlMetricsStore.maintain`), which deletes a chunk and inserts its events
    into `metrics_events` in one transaction, the delete first (`claim`), so that of two
    movers of one chunk only one inserts it.
Queries of a SQL store read the chunks that overlap their window besides the rows.

Payload version 1: orjson of {"v": 1, column: [one value per event], ...} for each of
`COLUMNS` (those of `metrics_events`), times as naive-UTC ISO 8601 strings, as orjson writes
datetimes (in C, 0.04 µs each, where microseconds since the epoch cost 0.5 µs in Python;
Arrow casts them back in bulk). A payload of another version, or a malformed one, is refused
(FailedPrecondition): its chunk is logged and left in place for a server that reads it.
"""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.core.db import Database
from modelyard.core.errors import FailedPrecondition
from modelyard.core.ids import new_id, utcnow
from modelyard.metrics.models import Event, EventRow
from modelyard.metrics.tables import MetricOutboxRow

log = logging.getLogger("modelyard.metrics")

VERSION = 1
CHUNK = 1000  # events per chunk (one row, ~110 KB of payload)
TAKE = 50  # chunks per import transaction (up to 50k events)
# `EventRow`'s fields, in order: the rows of a batch transpose straight into these
COLUMNS: tuple[str, ...] = EventRow._fields
Columns = dict[str, list[Any]]
T = TypeVar("T")

_TABLE = cast(sa.Table, MetricOutboxRow.__table__)
_TZINFO = operator.attrgetter("tzinfo")


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def _iso(v: Any) -> str:
    """What orjson writes for a datetime (ISO 8601 with a "T"); `str` of anything else."""
    return v.isoformat() if isinstance(v, datetime) else str(v)


def dumps(doc: Any, option: int = 0) -> bytes:
    """JSON of events' values by orjson (a twentieth of `json.dumps`'s cost), numpy included;
    a value neither can write is kept as its text, so no event fails every flush. What orjson
    refuses (an integer past 64 bits) `json` writes, datetimes as orjson would."""
    try:
        return orjson.dumps(doc, default=str, option=option | orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return json.dumps(doc, default=_iso).encode()


def pack(events: Sequence[Event]) -> tuple[bytes, datetime, datetime]:
    """The payload of `events` (at least one), and their earliest and latest time."""
    # the checks run in C (map), as does the transpose of EventRows
    if set(map(type, events)) == {EventRow}:
        cols: list[Any] = list(zip(*events, strict=True))
    else:
        cols = [[getattr(e, f) for e in events] for f in COLUMNS]
    times = cols[4]
    if set(map(_TZINFO, times)) != {None}:
        times = cols[4] = [_naive(t) for t in times]
    payload = dumps({"v": VERSION, **dict(zip(COLUMNS, cols, strict=True))})
    return payload, min(times), max(times)


def unpack(payload: bytes, batch_id: str) -> Columns:
    """The columns of a payload; FailedPrecondition if this version cannot read it."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as e:
        raise FailedPrecondition(
            f"outbox chunk {batch_id} is not a packed payload ({e}); it stays in "
            "metrics_outbox: delete that row if nothing can read it", {"batch_id": batch_id}
        ) from e
    version = doc.get("v") if isinstance(doc, dict) else None
    if version != VERSION:
        raise FailedPrecondition(
            f"outbox chunk {batch_id} has payload version {version!r} and this server reads "
            f"version {VERSION}: run the replicas' release here too; the chunk stays in "
            "metrics_outbox until a server reads it", {"batch_id": batch_id, "version": version})
    cols = {c: doc.get(c) for c in COLUMNS}
    n = len(cols["request_id"]) if isinstance(cols["request_id"], list) else -1
    bad = [c for c, v in cols.items() if not isinstance(v, list) or len(v) != n]
    if bad:
        raise FailedPrecondition(
            f"outbox chunk {batch_id} lacks columns or has columns of unequal length "
            f"({', '.join(bad)}); it stays in metrics_outbox: delete that row if nothing can "
            "read it", {"batch_id": batch_id, "columns": bad})
    return cols


def times(cols: Columns) -> list[datetime]:
    return [datetime.fromisoformat(t) for t in cols["time"]]


def to_events(cols: Columns) -> list[EventRow]:
    return list(map(EventRow._make, zip(*(times(cols) if c == "time" else cols[c]
                                          for c in COLUMNS), strict=True)))


@dataclass(frozen=True)
class Chunk:
    id: int
    batch_id: str
    payload: bytes


def decoded(chunks: Iterable[Chunk], convert: Callable[[Columns], T]) -> list[tuple[Chunk, T]]:
    """`convert` of each chunk's columns. A chunk that cannot be read is logged and left out
    (not deleted: a server that reads it takes it later), so it holds up no other chunk."""
    out = []
    for c in chunks:
        try:
            out.append((c, convert(unpack(c.payload, c.batch_id))))
        except FailedPrecondition as e:
            log.error("%s", e.message)
        except (ValueError, TypeError) as e:  # values of the wrong type (Arrow's errors too)
            log.error("outbox chunk %s holds values this server cannot read (%s); it stays in "
                      "metrics_outbox", c.batch_id, e)
    return out


class Outbox:
    """The `metrics_outbox` table of one metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, events: Sequence[Event]) -> int:
        """Stores `events` as chunks in one transaction; returns how many events."""
        rows = []
        now = utcnow()
        for i in range(0, len(events), CHUNK):
            part = events[i:i + CHUNK]
            payload, first, last = pack(part)
            rows.append({"batch_id": new_id("obx"), "created_at": now, "n_events": len(part),
                         "first_time": first, "last_time": last, "payload": payload})
        if rows:
            with self.db.session() as s:
                s.execute(sa.insert(_TABLE), rows)
        return len(events)

    def take(self, after: int, limit: int = TAKE) -> list[Chunk]:
        """Up to `limit` chunks with row ids above `after`, oldest first (a pass pages on by
        id, past chunks it cannot read)."""
        return self._chunks(MetricOutboxRow.id > after, limit)

    def _chunks(self, where: sa.ColumnElement[bool], limit: int | None) -> list[Chunk]:
        r = MetricOutboxRow
        with self.db.session() as s:
            rows = s.execute(sa.select(r.id, r.batch_id, r.payload).where(where)
                             .order_by(r.id).limit(limit)).tuples().all()
        return [Chunk(i, b, bytes(p)) for i, b, p in rows]

    def delete(self, batch_ids: list[str]) -> None:
        with self.db.session() as s:
            for i in range(0, len(batch_ids), 500):
                s.execute(sa.delete(_TABLE).where(_TABLE.c.batch_id.in_(batch_ids[i:i + 500])))

    @staticmethod
    def claim(s: Session, chunk: Chunk) -> bool:
        """Deletes the chunk in `s`'s transaction; False if another taker deleted it first
        (on PostgreSQL the delete waits for that taker's commit, then finds nothing)."""
        done = s.execute(sa.delete(_TABLE).where(_TABLE.c.id == chunk.id,
                                                 _TABLE.c.batch_id == chunk.batch_id))
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]

    def select(self, project: str, start: datetime, end: datetime, deployment: str | None,
               include_shadow: bool) -> Columns:
        """The events of `project` with `start <= time < end` (naive UTC) in the chunks, times
        as datetimes."""
        r = MetricOutboxRow
        chunks = self._chunks(sa.and_(r.first_time < end, r.last_time >= start), None)
        out: Columns = {c: [] for c in COLUMNS}
        for _, cols in decoded(chunks, lambda c: {**c, "time": times(c)}):
            keep = [i for i, (p, d, t, shadow) in enumerate(zip(
                cols["project"], cols["deployment"], cols["time"], cols["shadow"],
                strict=True))
                if p == project and start <= t < end and (deployment is None or d == deployment)
                and (include_shadow or not shadow)]
            for c in COLUMNS:
                column = cols[c]
                out[c].extend(column[i] for i in keep)
        return out
