"""Turning event columns into one series per group and step (numpy, no SQL)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from modelyard.metrics import _hist
from modelyard.metrics.models import Cells, EventColumns

_PERCENTILES = {"latency_p50": 50.0, "latency_p95": 95.0, "latency_p99": 99.0}


def step_values(cols: EventColumns, idx: np.ndarray, metric: str, step_s: float) -> float | None:
    """The value of `metric` over the events `idx` (indices into `cols`) of one step."""
    n = len(idx)
    if metric == "count":
        return float(n)
    if metric == "rate":
        return n / step_s
    if n == 0:
        return None
    if metric == "latency_mean":
        return float(np.mean(cols.latency_ms[idx]))
    if metric in _PERCENTILES:
        # numpy's default (linear interpolation between closest ranks)
        return float(np.percentile(cols.latency_ms[idx], _PERCENTILES[metric]))
    outcome = cols.outcome[idx]
    if metric == "error_rate":
        # failures of the model (errors, timeouts); requests shed for load (rejected) are
        # not the model's fault, so they do not count against a canary
        return float(np.count_nonzero(np.isin(outcome, ["error", "timeout"]))) / n
    if metric == "accuracy":
        truth = cols.true_label[idx]
        known = np.array([t is not None for t in truth], dtype=bool) & (outcome == "ok")
        if not known.any():
            return None
        return float(np.mean(cols.label[idx][known] == truth[known]))
    if metric in ("mae", "rmse"):  # a regression model's label is its number, as text
        errors = _errors(cols.label[idx], cols.true_label[idx], outcome)
        if errors.size == 0:
            return None
        return float(np.mean(errors) if metric == "mae" else np.sqrt(np.mean(errors ** 2)))
    raise ValueError(metric)


def _errors(predicted: np.ndarray, truth: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """|predicted - true| of the ok events whose feedback and label both read as numbers."""
    out = []
    for p, t, o in zip(predicted.tolist(), truth.tolist(), outcome.tolist(), strict=True):
        if o != "ok" or p is None or t is None:
            continue
        try:
            d = abs(float(p) - float(t))
        except ValueError:
            continue
        if math.isfinite(d):
            out.append(d)
    return np.asarray(out, dtype=np.float64)


def _factorize(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct values (as text) and each event's index into them."""
    if values.dtype != object:
        uniq, codes = np.unique(values, return_inverse=True)
        return [str(v) for v in uniq.tolist()], codes
    index: dict[object, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64,
                        count=len(values))
    return [str(v) for v in index], codes


def aggregate(cols: EventColumns, metric: str, start_s: float, step_s: float, n_steps: int,
              group_by: str | None) -> dict[str, list[float | None]]:
    """{group key: [value per step]}; a group appears only if it has events in the range."""
    if len(cols) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return {"": [step_values(cols, empty, metric, step_s) for _ in range(n_steps)]} \
            if group_by is None else {}
    steps = np.floor((cols.time_s - start_s) / step_s).astype(np.int64)
    # latencies as the rollups read them (a row stored before the API bounded them)
    cols = dataclasses.replace(cols, latency_ms=_hist.clamp(cols.latency_ms))
    if group_by is None:
        names, codes = [""], np.zeros(len(cols), dtype=np.int64)
    else:
        values = {"deployment": cols.deployment, "model": cols.model,
                  "version": cols.version}[group_by]
        names, codes = _factorize(values)
    # one sort by (group, step); each (group, step) cell is then a contiguous slice
    order = np.lexsort((steps, codes))
    cell = codes[order] * (n_steps + 1) + steps[order]
    out: dict[str, list[float | None]] = {}
    for code, name in sorted(enumerate(names), key=lambda cn: _natural(cn[1])):
        first = code * (n_steps + 1)
        bounds = np.searchsorted(cell, first + np.arange(n_steps + 1))
        out[name] = [step_values(cols, order[bounds[i]:bounds[i + 1]], metric, step_s)
                     for i in range(n_steps)]
    return out


ROLLUP_METRICS = ("count", "rate", "latency_mean", *_PERCENTILES, "error_rate")


def aggregate_cells(cells: Cells, metric: str, step_s: float, n_steps: int,
                    group_by: str | None) -> dict[str, list[float | None]]:
    """`aggregate` over rollup cells instead of raw events, vectorised over every
    (group, step) at once."""
    names = sorted(cells.groups, key=_natural) if group_by else [""]
    remap = np.array([names.index(g) for g in cells.groups] if group_by else
                     [0] * len(cells.groups), dtype=np.int64)
    code = remap[cells.code] if len(cells) else np.zeros(0, dtype=np.int64)
    order = np.lexsort((cells.bin, cells.step, code))
    cell = (code * n_steps + cells.step)[order]
    n, sums, errors = cells.n[order], cells.latency_sum[order], cells.errors[order]
    size = len(names) * n_steps
    total = np.bincount(cell, weights=n, minlength=size).astype(np.int64)
    if metric in ("count", "rate"):
        values = total / (step_s if metric == "rate" else 1.0)
    elif metric == "latency_mean":
        values = np.bincount(cell, weights=sums, minlength=size) / np.maximum(total, 1)
    elif metric == "error_rate":
        values = np.bincount(cell, weights=errors, minlength=size) / np.maximum(total, 1)
    elif metric in _PERCENTILES:
        values = _hist.cell_percentiles(total, n, sums, _PERCENTILES[metric])
    else:
        raise ValueError(metric)
    empty = (total == 0) & (metric not in ("count", "rate"))
    flat: list[float | None] = [None if e else float(v)
                                for v, e in zip(values.tolist(), empty.tolist(), strict=True)]
    return {name: flat[i * n_steps:(i + 1) * n_steps] for i, name in enumerate(names)}


def _natural(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)
