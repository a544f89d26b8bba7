"""A batch of prediction events as the Arrow table the DuckDB store appends (`_duck.py`),
built from event objects or from an outbox chunk's columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from modelyard.metrics._limits import summary_mean
from modelyard.metrics._outbox import Columns, dumps
from modelyard.metrics.models import Event
from modelyard.metrics.store import naive_utc

SCHEMA = pa.schema([
    ("seq", pa.int64()), ("project", pa.string()), ("deployment", pa.string()),
    ("model", pa.string()), ("version", pa.int32()), ("time", pa.timestamp("us")),
    ("latency_ms", pa.float64()), ("outcome", pa.string()), ("label", pa.string()),
    ("confidence", pa.float64()), ("request_id", pa.string()), ("shadow", pa.bool_()),
    ("input_mean", pa.float64()), ("input_summary", pa.string()),
])


def _means(summaries: Iterable[Any]) -> list[float | None]:
    return [summary_mean(x) for x in summaries]


def _summary_json(x: Any) -> str | None:
    return None if x is None else dumps(x, orjson.OPT_NON_STR_KEYS).decode()


def events_table(events: Sequence[Event], seq: int) -> pa.Table:
    """The Arrow batch of `events` (what `append` stores)."""
    means = _means(e.input_summary for e in events)
    return pa.table({
        "seq": pa.array(np.full(len(events), seq, dtype=np.int64)),
        "project": [e.project for e in events],
        "deployment": [e.deployment for e in events],
        "model": [e.model for e in events],
        "version": pa.array([e.version for e in events], pa.int32()),
        "time": pa.array([naive_utc(e.time) for e in events], pa.timestamp("us")),
        "latency_ms": pa.array([e.latency_ms for e in events], pa.float64()),
        "outcome": [e.outcome for e in events],
        "label": pa.array([e.label for e in events], pa.string()),
        "confidence": pa.array([e.confidence for e in events], pa.float64()),
        "request_id": [e.request_id for e in events],
        "shadow": pa.array([e.shadow for e in events], pa.bool_()),
        "input_mean": pa.array(means, pa.float64()),
        "input_summary": pa.array([_summary_json(e.input_summary) for e in events],
                                  pa.string()),
    }, schema=SCHEMA)


def columns_table(cols: Columns) -> pa.Table:
    """The Arrow batch of an outbox chunk's columns, like `events_table`'s."""
    return pa.table({
        "seq": pa.array(np.zeros(len(cols["request_id"]), dtype=np.int64)),
        **{name: pa.array(cols[name], pa.string())
           for name in ("project", "deployment", "model")},
        "version": pa.array(cols["version"], pa.int32()),
        "time": pa.array(cols["time"], pa.string()).cast(pa.timestamp("us")),
        "latency_ms": pa.array(cols["latency_ms"], pa.float64()),
        "outcome": pa.array(cols["outcome"], pa.string()),
        "label": pa.array(cols["label"], pa.string()),
        "confidence": pa.array(cols["confidence"], pa.float64()),
        "request_id": pa.array(cols["request_id"], pa.string()),
        "shadow": pa.array(cols["shadow"], pa.bool_()),
        "input_mean": pa.array(_means(cols["input_summary"]), pa.float64()),
        "input_summary": pa.array([_summary_json(x) for x in cols["input_summary"]],
                                  pa.string()),
    }, schema=SCHEMA)
