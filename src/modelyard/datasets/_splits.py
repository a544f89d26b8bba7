"""Deterministic, content-derived train/validation/test splits of one pinned version."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import lance
import pyarrow as pa

from modelyard.core.errors import InvalidArgument

SPLITS = ("train", "validation", "test")


def snapshot_hash(type_: str, config: dict[str, Any], content: str, seed: int,
                  fractions: dict[str, float]) -> str:
    """Same content, type, seed and fractions give the same hash (and so the same snapshot)."""
    spec = {"type": type_, "config": config, "content": content, "seed": seed,
            "fractions": {k: round(fractions[k], 9) for k in SPLITS}}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def assign(row_hashes: list[str], seed: int, fractions: dict[str, float]) -> dict[str, list[int]]:
    """Positions per split. A row's place depends only on its content, its occurrence among
    equal rows and the seed, so the same content always splits the same way."""
    seen: Counter[str] = Counter()
    keyed = []
    for pos, h in enumerate(row_hashes):
        occ = seen[h]
        seen[h] += 1
        key = hashlib.sha256(f"{seed}:{h}:{occ}".encode()).digest()
        keyed.append((key, pos))
    keyed.sort()
    n = len(keyed)
    n_train = round(n * fractions["train"])
    n_val = min(n - n_train, round(n * fractions["validation"]))
    order = [pos for _, pos in keyed]
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_val],
             "test": order[n_train + n_val:]}
    return {k: sorted(v) for k, v in parts.items()}


def write_splits(uri: str, storage_options: dict[str, str], parts: dict[str, list[int]]) -> None:
    splits = [s for s in SPLITS for _ in parts[s]]
    positions = [p for s in SPLITS for p in parts[s]]
    table = pa.table({"split": pa.array(splits, pa.string()),
                      "position": pa.array(positions, pa.int64())})
    try:
        lance.write_dataset(table, uri, mode="create", storage_options=storage_options)
    except (OSError, ValueError):  # a retry after a failed attempt that got this far
        lance.write_dataset(table, uri, mode="overwrite", storage_options=storage_options)


def read_split(uri: str, storage_options: dict[str, str], split: str) -> list[int]:
    if split not in SPLITS:  # checked, not quoted: it becomes part of a Lance filter
        raise InvalidArgument(f"unknown split {split!r}: use one of {list(SPLITS)}",
                              {"field": "split"})
    ds = lance.dataset(uri, storage_options=storage_options)
    t = ds.to_table(columns=["position"], filter=f"split = '{split}'")
    return t.column(0).to_pylist()  # type: ignore[no-any-return]
