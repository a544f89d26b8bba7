"""PyTorch access to a dataset snapshot from inside a training job.

Only the snapshot dict (as `client.datasets.get_snapshot(...)` returns it) is needed: it pins
the Lance URI and version, and names the split file. Reads use Lance `take`, so random access
is fast; an epoch's order is a seeded permutation, and each rank gets a disjoint stride of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from modelyard.core.errors import FailedPrecondition, InvalidArgument

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Shard:
    """Where this process sits in a distributed job (read once, passed down)."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise InvalidArgument(f"rank {self.rank} is not in 0..{self.world_size - 1}")


class SplitDataset(Dataset[dict[str, Any]]):
    """One split of a pinned snapshot, in the epoch's shuffled order, this rank's share only.

    Call `set_epoch(n)` at the start of every epoch to get that epoch's order; the same
    (snapshot, split, seed, epoch, rank, world_size) always gives the same rows in the same order.
    """

    def __init__(self, snapshot: dict[str, Any], split: str, *, rank: int = 0,
                 world_size: int = 1, seed: int = 0, epoch: int = 0, shuffle: bool = True) -> None:
        from modelyard.datasets import _splits
        from modelyard.datasets.types import get_type

        if split not in SPLITS:
            raise InvalidArgument(f"split {split!r} does not exist: use one of {list(SPLITS)}")
        if snapshot.get("status") != "ready" or not snapshot.get("splits_uri"):
            raise FailedPrecondition(
                f"snapshot {snapshot.get('id')} is {snapshot.get('status')}, not ready: wait for "
                "it (client.datasets.snapshot(..., wait=True)) or retry it if it failed")
        self.snapshot = snapshot
        self.split = split
        self.shard = Shard(rank, world_size)
        self.seed = int(snapshot.get("seed", 0)) * 1_000_003 + seed
        self.shuffle = shuffle
        self.label_names: list[str] = list(snapshot.get("label_names") or [])
        self._kind = get_type(snapshot["type"], snapshot.get("config") or {})
        # Kept with the dataset: a DataLoader worker started by spawn gets them with it (a
        # pickle through a pipe), rather than using up another exchange of the job's ticket.
        self._opts = storage_options(snapshot)
        self.positions = np.asarray(_splits.read_split(snapshot["splits_uri"], self._opts, split),
                                    dtype=np.int64)
        self._ds: Any = None
        self._addresses: np.ndarray | None = None
        self._columns = [f.name for f in self._kind.schema()]
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        order = np.arange(len(self.positions))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.positions))
        self.order = order[self.shard.rank::self.shard.world_size]

    def _dataset(self) -> Any:
        if self._ds is None:  # opened lazily: DataLoader workers each open their own
            import lance

            self._ds = lance.dataset(self.snapshot["uri"], version=int(self.snapshot["lance_version"]),
                                     storage_options=self._opts)
            if hasattr(self._ds, "_take_rows"):
                # Taking by position is slow on a version with deleted rows (Lance maps every
                # offset through the deletion files); row addresses of the pinned version are
                # read once (a tiny column) and taken directly.
                table = self._ds.to_table(columns=[], with_row_address=True)
                self._addresses = table.column("_rowaddr").to_numpy()
        return self._ds

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_ds"] = None
        state["_addresses"] = None
        return state

    def __len__(self) -> int:
        return len(self.order)

    def positions_of(self, indices: list[int]) -> list[int]:
        """The Lance row positions behind dataset indices (for checks and debugging)."""
        return [int(self.positions[self.order[i]]) for i in indices]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        if any(i < -len(self) or i >= len(self) for i in indices):
            raise IndexError(f"index out of range for a split of {len(self)} rows")
        pos = self.positions_of([i % len(self) for i in indices])
        ds = self._dataset()
        if self._addresses is not None:
            rows = ds._take_rows(self._addresses[pos].tolist(), columns=self._columns).to_pylist()
        else:
            rows = ds.take(pos, columns=self._columns).to_pylist()
        return [self._kind.training_row(r, self.label_names) for r in rows]


def open_split(snapshot: dict[str, Any], split: str, *, rank: int = 0, world_size: int = 1,
               seed: int = 0, epoch: int = 0, shuffle: bool = True) -> SplitDataset:
    """A `torch.utils.data.Dataset` of training row dicts over one split of a ready snapshot."""
    return SplitDataset(snapshot, split, rank=rank, world_size=world_size, seed=seed, epoch=epoch,
                        shuffle=shuffle)


def load_split_arrays(snapshot: dict[str, Any], split: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every row of a split in stored order (no shuffle), and the label names."""
    ds = open_split(snapshot, split, shuffle=False)
    rows = ds.__getitems__(list(range(len(ds)))) if len(ds) else []
    return rows, ds.label_names


def storage_options(snapshot: dict[str, Any]) -> dict[str, str]:
    """The snapshot's public storage options plus the credentials to read it: inside a job,
    those its launch ticket was exchanged for; elsewhere (a notebook with its own keys),
    MODELYARD_STORAGE_OPTIONS if set."""
    from modelyard.runtime._context import credentials

    opts = dict(snapshot.get("storage_options") or {})
    creds = credentials()
    if creds is not None:
        opts.update(creds.storage_options)
    elif secret := os.environ.get("MODELYARD_STORAGE_OPTIONS"):
        opts.update(json.loads(secret))
    return opts
