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
    """The events picked by a boolean mask or an index array."""
    return EventColumns(
        deployment=cols.deployment[mask], model=cols.model[mask], version=cols.version[mask],
        time_s=cols.time_s[mask], latency_ms=cols.latency_ms[mask], outcome=cols.outcome[mask],
        label=cols.label[mask], true_label=cols.true_label[mask],
    )


def aggregate(cols: EventColumns, metric: str, start_s: float, step_s: float, n_steps: int,
              group_by: str | None) -> dict[str, list[float | None]]:
    """{group key: [value per step]}; a group appears only if it has events in the range."""
    if len(cols) == 0:
        return {"": [step_values(cols, metric, step_s) for _ in range(n_steps)]} \
            if group_by is None else {}
    keys = group_keys(cols, group_by)
    steps = np.floor((cols.time_s - start_s) / step_s).astype(np.int64)
    out: dict[str, list[float | None]] = {}
    for g in sorted(set(keys.tolist()), key=_natural):
        idx = np.flatnonzero(keys == g)
        idx = idx[np.argsort(steps[idx], kind="stable")]  # group's events ordered by step
        bounds = np.searchsorted(steps[idx], np.arange(n_steps + 1))
        out[g] = [step_values(select(cols, idx[bounds[i]:bounds[i + 1]]), metric, step_s)
                  for i in range(n_steps)]
    return out


def _natural(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)
