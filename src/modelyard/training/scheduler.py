"""Admission: which queued jobs start now. A pure function, so it is easy to test and fast.

Rules, in order:
- a job is admitted whole or not at all (gang admission: every worker's share at once);
- higher priority first; within a priority, the project holding least goes first (fair
  share), then first in, first out;
- a project never holds more than its quota;
- backfill: a job that does not fit does not block smaller ones behind it, unless it has
  waited longer than `reserve_after_s`; then what it needs is held back for it, so a big job
  cannot starve behind a stream of small ones.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

EPS = 1e-9


@dataclass(frozen=True)
class Demand:
    """What one job holds (running) or asks for (queued), totalled over its workers."""

    job_id: str
    project: str
    cpu: float
    gpu: int = 0
    memory_mb: int = 0
    priority: int = 0
    order: float = 0.0  # FIFO key: the time it was queued (seconds)


@dataclass(frozen=True)
class Capacity:
    cpu: float
    gpu: int
    memory_mb: int


@dataclass(frozen=True)
class Limit:
    """A project's quota; None means no limit."""

    cpu: float | None = None
    gpu: int | None = None
    jobs: int | None = None


@dataclass
class _Held:
    cpu: float = 0.0
    gpu: int = 0
    memory_mb: int = 0
    jobs: int = 0

    def add(self, d: Demand) -> None:
        self.cpu += d.cpu
        self.gpu += d.gpu
        self.memory_mb += d.memory_mb
        self.jobs += 1


@dataclass
class _Free:
    cpu: float
    gpu: int
    memory_mb: int

    def fits(self, d: Demand) -> bool:
        return d.cpu <= self.cpu + EPS and d.gpu <= self.gpu and d.memory_mb <= self.memory_mb

    def take(self, d: Demand) -> None:
        self.cpu -= d.cpu
        self.gpu -= d.gpu
        self.memory_mb -= d.memory_mb


@dataclass
class Decision:
    admitted: list[str] = field(default_factory=list)
    over_quota: list[str] = field(default_factory=list)


def within_quota(held: _Held, d: Demand, limit: Limit | None) -> bool:
    if limit is None:
        return True
    if limit.jobs is not None and held.jobs + 1 > limit.jobs:
        return False
    if limit.cpu is not None and held.cpu + d.cpu > limit.cpu + EPS:
        return False
    return not (limit.gpu is not None and held.gpu + d.gpu > limit.gpu)


def admit(
    queued: Iterable[Demand],
    running: Iterable[Demand],
    capacity: Capacity,
    quotas: Mapping[str, Limit] | None = None,
    *,
    now: float = 0.0,
    reserve_after_s: float | None = 300.0,
) -> Decision:
    """The jobs of `queued` to start now, in start order, given what `running` holds."""
    quotas = quotas or {}
    free = _Free(capacity.cpu, capacity.gpu, capacity.memory_mb)
    held: dict[str, _Held] = defaultdict(_Held)
    for r in running:
        free.take(r)
        held[r.project].add(r)

    decision = Decision()
    for level in _by_priority(queued):
        _admit_level(level, free, held, quotas, decision, now, reserve_after_s)
    return decision


def _by_priority(queued: Iterable[Demand]) -> list[list[Demand]]:
    levels: dict[int, list[Demand]] = defaultdict(list)
    for d in queued:
        levels[d.priority].append(d)
    return [sorted(levels[p], key=lambda d: (d.order, d.job_id))
            for p in sorted(levels, reverse=True)]


def _admit_level(level: Sequence[Demand], free: _Free, held: dict[str, _Held],
                 quotas: Mapping[str, Limit], decision: Decision, now: float,
                 reserve_after_s: float | None) -> None:
    # One FIFO per project; take the head of the project holding the least CPU next.
    fifos: dict[str, list[Demand]] = defaultdict(list)
    for d in level:
        fifos[d.project].append(d)
    heads = {p: 0 for p in fifos}
    heap = [(held[p].cpu, q[0].order, p) for p, q in fifos.items()]
    heapq.heapify(heap)
    while heap:
        _, _, project = heapq.heappop(heap)
        i = heads[project]
        d = fifos[project][i]
        heads[project] = i + 1
        if not within_quota(held[project], d, quotas.get(project)):
            decision.over_quota.append(d.job_id)
        elif free.fits(d):
            free.take(d)
            held[project].add(d)
            decision.admitted.append(d.job_id)
        elif reserve_after_s is not None and now - d.order >= reserve_after_s:
            # Starving: hold back what it needs (as far as it exists) so later jobs cannot
            # take it; it starts once running jobs give enough back.
            free.cpu -= min(d.cpu, max(free.cpu, 0.0))
            free.gpu -= min(d.gpu, max(free.gpu, 0))
            free.memory_mb -= min(d.memory_mb, max(free.memory_mb, 0))
        if heads[project] < len(fifos[project]):
            nxt = fifos[project][heads[project]]
            heapq.heappush(heap, (held[project].cpu, nxt.order, project))
