"""The fixed latency histogram of the rollups: log-spaced buckets, mergeable by addition.

Bucket 0 holds latencies below `MIN_MS`; bucket b >= 1 holds `[MIN_MS * G**(b-1), MIN_MS * G**b)`.
A rollup keeps, per bucket, the count and the latency sum, so the mean inside a bucket is
known: a percentile read from rollups takes the same closest ranks numpy's linear
interpolation takes and uses, for each, the mean of the bucket that rank falls in. That value
lies in the same bucket as the true one, so the answer is within `G - 1` (5%) of the raw
percentile, relative (absolute `MIN_MS` in bucket 0).
"""

from __future__ import annotations

import math

import numpy as np

from modelyard.metrics._limits import MAX_LATENCY_MS

MIN_MS = 0.001
GROWTH = 1.05
_LOG_G = math.log(GROWTH)

# The same formula in SQL, for the engine that builds rollups (`lat` is the latency column).
SQL_BIN = (f"CASE WHEN {{lat}} < {MIN_MS} THEN 0 ELSE "
           f"1 + CAST(floor(ln({{lat}} / {MIN_MS}) / {_LOG_G!r}) AS INTEGER) END")

# A stored latency as every query and rollup reads it: within [0, MAX_LATENCY_MS], where the
# API keeps them; a row stored before it did (inf, NaN, 1e308, negative, NULL) is read at the
# nearest bound (NaN and NULL as 0) rather than overflow a bucket and stop every rollup pass.
SQL_LATENCY = (f"CASE WHEN {{lat}} IS NULL OR isnan({{lat}}) OR {{lat}} < 0 THEN 0.0 "
               f"WHEN {{lat}} > {MAX_LATENCY_MS!r} THEN {MAX_LATENCY_MS!r} ELSE {{lat}} END")


def clamp(latency_ms: np.ndarray) -> np.ndarray:
    """numpy twin of `SQL_LATENCY`."""
    lat = np.nan_to_num(np.asarray(latency_ms, dtype=np.float64), nan=0.0,
                        posinf=MAX_LATENCY_MS, neginf=0.0)
    return np.clip(lat, 0.0, MAX_LATENCY_MS)


def bins(latency_ms: np.ndarray) -> np.ndarray:
    """The bucket of each latency (numpy twin of `SQL_BIN`)."""
    lat = np.asarray(latency_ms, dtype=np.float64)
    out = np.zeros(lat.shape, dtype=np.int64)
    big = lat >= MIN_MS
    out[big] = 1 + np.floor(np.log(lat[big] / MIN_MS) / _LOG_G).astype(np.int64)
    return out


def cell_percentiles(total: np.ndarray, n: np.ndarray, sums: np.ndarray,
                     q: float) -> np.ndarray:
    """The q-th percentile (0..100) of every cell of a histogram at once.

    `n` and `sums` are bucket rows sorted by (cell, bucket); `total[c]` is how many events
    cell c holds, so its rows are the next ones after cell c - 1's. Empty cells give 0.
    """
    cum = np.cumsum(n)
    before = np.cumsum(total) - total  # events in earlier cells
    k = np.maximum(total - 1, 0) * (q / 100.0)
    lo, hi = np.floor(k), np.ceil(k)
    means = sums / np.maximum(n, 1)
    last = max(len(n) - 1, 0)
    if len(n) == 0:
        return np.zeros(len(total))
    v_lo = means[np.minimum(np.searchsorted(cum, before + lo, side="right"), last)]
    v_hi = means[np.minimum(np.searchsorted(cum, before + hi, side="right"), last)]
    return np.where(total > 0, v_lo + (v_hi - v_lo) * (k - lo), 0.0)
