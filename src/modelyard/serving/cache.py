"""Loaded models in a memory-budgeted LRU cache, with pinning.

An entry's size is its file size × `SIZE_FACTOR`. Loading a model evicts the least recently
used unpinned ones until the total fits the budget. An evicted model is only retired: requests
already queued on it finish (Python keeps the session alive while they hold it).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from modelyard.core.errors import FailedPrecondition
from modelyard.serving.batcher import Batcher, Retired
from modelyard.serving.models import Batching
from modelyard.serving.runtime import LoadedModel, ModelKey

log = logging.getLogger("modelyard.serving")


class Entry:
    """A loaded model and its batchers, one per deployment that sends it requests: each
    deployment queues and batches with its own settings (`Batching`), so a small queue or
    batch set on one deployment never limits another that serves the same version. The model
    (its memory) is shared."""

    def __init__(self, model: LoadedModel, make: Callable[[Batching], Batcher]) -> None:
        self.model = model
        self._make = make
        self._batchers: dict[str, tuple[Batching, Batcher]] = {}
        self._lock = threading.Lock()
        self.retired = False

    def batcher(self, deployment: str, batching: Batching) -> Batcher:
        """The deployment's batcher, made (or remade, its settings changed) on demand;
        Retired once the model is unloaded."""
        got = self._batchers.get(deployment)
        if got is not None and (got[0] is batching or got[0] == batching):
            return got[1]
        with self._lock:
            if self.retired:
                raise Retired()
            got = self._batchers.get(deployment)
            if got is None or got[0] != batching:
                if got is not None:
                    got[1].retire()  # its queued requests finish with the old settings
                got = self._batchers[deployment] = (batching, self._make(batching))
            return got[1]

    @property
    def batchers(self) -> list[Batcher]:
        with self._lock:
            return [b for _, b in self._batchers.values()]

    @property
    def depth(self) -> int:
        return sum(b.depth for b in self.batchers)

    def retire(self) -> None:
        """Take no new requests; those queued finish."""
        with self._lock:
            self.retired = True
            batchers = [b for _, b in self._batchers.values()]
        for b in batchers:
            b.retire()


class ModelCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[ModelKey, Entry] = OrderedDict()
        self._pinned: set[ModelKey] = set()
        self._lock = threading.Lock()
        self._loading: dict[ModelKey, threading.Lock] = {}
        self._on_load: Callable[[ModelKey], None] = _ignore
        self._on_evict: Callable[[ModelKey, str], None] = _ignore

    def observe(self, on_load: Callable[[ModelKey], None],
                on_evict: Callable[[ModelKey, str], None]) -> None:
        """Called after each load, and each unload with its reason (for metrics)."""
        self._on_load, self._on_evict = on_load, on_evict

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.model.size_bytes for e in self._entries.values())

    def loaded_keys(self) -> list[ModelKey]:
        with self._lock:
            return list(self._entries)

    def peek(self, key: ModelKey) -> Entry | None:
        """The entry if loaded (marks it recently used); never loads."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def peek_quiet(self, key: ModelKey) -> Entry | None:
        """The entry if loaded, without touching its recency (for monitoring)."""
        with self._lock:
            return self._entries.get(key)

    def get(self, key: ModelKey, load: Callable[[], Entry]) -> Entry:
        """The loaded entry, calling `load` (blocking; from a worker thread) if needed.

        Raises FailedPrecondition when the model alone is larger than the whole budget: no
        wait makes it fit, so it is no 429 (`check_fits` says the same before a load).
        """
        entry = self.peek(key)
        if entry is not None:
            return entry
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # one load per key; others wait for it
            entry = self.peek(key)
            if entry is not None:
                return entry
            try:
                entry = load()
                self.check_fits(key, entry.model.size_bytes)
                with self._lock:
                    self._entries[key] = entry
                    evicted = self._evict_locked()
                self._on_load(key)
                for k in evicted:
                    self._on_evict(k, "memory_budget")
                return entry
            finally:
                with self._lock:  # after the insert: a later caller finds the entry
                    self._loading.pop(key, None)

    def pin(self, key: ModelKey, pinned: bool = True) -> None:
        with self._lock:
            if pinned:
                self._pinned.add(key)
            else:
                self._pinned.discard(key)

    def check_fits(self, key: ModelKey, size_bytes: int) -> None:
        """FailedPrecondition if a model of this size can never be loaded here."""
        if size_bytes > self.budget_bytes:
            raise FailedPrecondition(
                f"model {key} needs about {_mb(size_bytes)} MB of memory, more than the whole "
                f"serving memory budget of {_mb(self.budget_bytes)} MB, so it can never be "
                "loaded here: raise MODELYARD_SERVING__MEMORY_BUDGET_MB (serving."
                "memory_budget_mb) or serve a smaller model",
                {"needed_mb": _mb(size_bytes), "budget_mb": _mb(self.budget_bytes)})

    def set_pinned(self, keys: set[ModelKey]) -> None:
        """Pin exactly `keys`; the others become evictable again."""
        with self._lock:
            self._pinned = set(keys)

    def is_pinned(self, key: ModelKey) -> bool:
        with self._lock:
            return key in self._pinned

    def evict(self, key: ModelKey) -> bool:
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is not None:
            entry.retire()
            self._on_evict(key, "unloaded")
        return entry is not None

    def clear(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
        for e in entries:
            e.retire()

    def _evict_locked(self) -> list[ModelKey]:
        """Unload least recently used unpinned entries until the rest fit; returns them."""
        total = sum(e.model.size_bytes for e in self._entries.values())
        evicted = []
        for key in list(self._entries):
            if total <= self.budget_bytes:
                break
            if key in self._pinned or len(self._entries) == 1:
                continue
            entry = self._entries.pop(key)
            total -= entry.model.size_bytes
            entry.retire()
            evicted.append(key)
            log.info("evicted %s from the model cache (LRU, memory budget)", key)
        if total > self.budget_bytes:
            log.warning("pinned models use %d MB, over the serving budget of %d MB",
                        total >> 20, self.budget_bytes >> 20)
        return evicted


def _ignore(*_: object) -> None:
    return None


def _mb(n: int) -> float:
    return round(n / 2**20, 1)
