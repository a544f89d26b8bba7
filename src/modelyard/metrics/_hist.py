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

MIN_MS = 0.001
GROWTH = 1.05
_LOG_G = math.log(GROWTH)

# The same formula in SQL, for the engine that builds rollups (`lat` is the latency column).
SQL_BIN = (f"CASE WHEN {{lat}} < {MIN_MS} THEN 0 ELSE "
           f"1 + CAST(floor(ln({{lat}} / {MIN_MS}) / {_LOG_G!r}) AS INTEGER) END")


def bins(latency_ms: np.ndarray) -> np.ndarray:
    """The bucket of each latency (numpy twin of `SQL_BIN`)."""
    lat = np.asarray(latency_ms, dtype=np.float64)
    out = np.zeros(lat.shape, dtype=np.int64)
    big = lat >= MIN_MS
    out[big] = 1 + np.floor(np.log(lat[big] / MIN_MS) / _LOG_G).astype(np.int64)
    return out


def percentile(counts: np.ndarray, sums: np.ndarray, q: float) -> float | None:
    """The q-th percentile (0..100) of a histogram given bucket by bucket in bucket order."""
    n = int(counts.sum())
    if n == 0:
        return None
    cum = np.cumsum(counts)
    k = (n - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    means = sums / np.maximum(counts, 1)
    v_lo = float(means[np.searchsorted(cum, lo, side="right")])
    v_hi = float(means[np.searchsorted(cum, hi, side="right")])
    return v_lo + (v_hi - v_lo) * (k - lo)
