"""Turning event columns into one series per group and step (numpy, no SQL)."""

from __future__ import annotations

import numpy as np

from modelyard.metrics.models import EventColumns

_PERCENTILES = {"latency_p50": 50.0, "latency_p95": 95.0, "latency_p99": 99.0}


def group_keys(cols: EventColumns, group_by: str | None) -> np.ndarray:
    if group_by is None:
        return np.full(len(cols), "", dtype=object)
    values = {"deployment": cols.deployment, "model": cols.model, "version": cols.version}[group_by]
    return np.array([str(v) for v in values], dtype=object)


def step_values(cols: EventColumns, metric: str, step_s: float) -> float | None:
    """The value of `metric` over the events of one step (already selected)."""
    n = len(cols)
    if metric == "count":
        return float(n)
    if metric == "rate":
        return n / step_s
    if n == 0:
        return None
    if metric == "latency_mean":
        return float(np.mean(cols.latency_ms))
    if metric in _PERCENTILES:
        # numpy's default (linear interpolation between closest ranks)
        return float(np.percentile(cols.latency_ms, _PERCENTILES[metric]))
    if metric == "error_rate":
        # failures of the model (errors, timeouts); requests shed for load (rejected) are
        # not the model's fault, so they do not count against a canary
        failed = np.isin(cols.outcome, ["error", "timeout"])
        return float(np.count_nonzero(failed)) / n
    if metric == "accuracy":
        known = np.array([t is not None for t in cols.true_label], dtype=bool)
        known &= cols.outcome == "ok"
        if not known.any():
            return None
        return float(np.mean(cols.label[known] == cols.true_label[known]))
    raise ValueError(metric)


def select(cols: EventColumns, mask: np.ndarray) -> EventColumns:
    return EventColumns(
        deployment=cols.deployment[mask], model=cols.model[mask], version=cols.version[mask],
        time_s=cols.time_s[mask], latency_ms=cols.latency_ms[mask], outcome=cols.outcome[mask],
        label=cols.label[mask], true_label=cols.true_label[mask],
    )


def aggregate(cols: EventColumns, metric: str, start_s: float, step_s: float, n_steps: int,
              group_by: str | None) -> dict[str, list[float | None]]:
    """{group key: [value per step]}; a group appears only if it has events in the range."""
    keys = group_keys(cols, group_by)
    steps = np.floor((cols.time_s - start_s) / step_s).astype(np.int64) if len(cols) else \
        np.zeros(0, dtype=np.int64)
    out: dict[str, list[float | None]] = {}
    groups = sorted(set(keys.tolist()), key=_natural) if len(cols) else ([""] if group_by is None
                                                                        else [])
    for g in groups:
        in_group = keys == g
        values: list[float | None] = []
        for i in range(n_steps):
            values.append(step_values(select(cols, in_group & (steps == i)), metric, step_s))
        out[g] = values
    return out


def _natural(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)
