"""Admission: which queued jobs start now. A pure function, so it is easy to test and fast.

Rules, in order:
- a job is admitted whole or not at all (gang admission: every worker's share at once);
- higher priority first; within a priority, the project holding least goes first (fair
  share), then first in, first out;
- a project never holds more than its quota;
- a job that does not fit holds back what it needs (as far as it is free) from every job of
  lower priority, so a stream of small low-priority jobs cannot keep it waiting;
- backfill: within its own priority, a job that does not fit does not block smaller ones
  behind it, unless it has waited longer than `reserve_after_s` (the backfill window); then
  what it needs is held back from them too, so a big job cannot starve behind small ones.

The decision also says in which order it looked at the queued jobs (their places in the
queue) and why each job it did not admit waits: the API shows both as they are decided.
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
class _Pool:
    """What is free now, and what of it is held back for jobs waiting to start."""

    capacity: Capacity
    cpu: float
    gpu: int
    memory_mb: int
    held_cpu: float = 0.0
    held_gpu: int = 0
    held_memory_mb: int = 0
    holders: list[Demand] = field(default_factory=list)

    def fits(self, d: Demand, *, held_too: bool = False) -> bool:
        cpu, gpu, mem = self.cpu, self.gpu, self.memory_mb
        if held_too:
            cpu, gpu, mem = cpu + self.held_cpu, gpu + self.held_gpu, mem + self.held_memory_mb
        return d.cpu <= cpu + EPS and d.gpu <= gpu and d.memory_mb <= mem

    def take(self, d: Demand) -> None:
        self.cpu -= d.cpu
        self.gpu -= d.gpu
        self.memory_mb -= d.memory_mb

    def hold(self, d: Demand) -> None:
        """Holds back for `d` what it needs, as far as it is free: later jobs cannot take it;
        `d` starts once running jobs give enough back."""
        cpu = min(d.cpu, max(self.cpu, 0.0))
        gpu = min(d.gpu, max(self.gpu, 0))
        mem = min(d.memory_mb, max(self.memory_mb, 0))
        if cpu <= EPS and gpu == 0 and mem == 0:
            return
        self.cpu, self.gpu, self.memory_mb = self.cpu - cpu, self.gpu - gpu, self.memory_mb - mem
        self.held_cpu += cpu
        self.held_gpu += gpu
        self.held_memory_mb += mem
        self.holders.append(d)

    def why_not(self, d: Demand) -> str:
        """Why `d`, which does not fit, waits."""
        if self.holders and self.fits(d, held_too=True):
            holder = next((h for h in self.holders if h.priority > d.priority), self.holders[0])
            if holder.priority > d.priority:
                return f"behind higher-priority job {holder.job_id}"
            return (f"behind job {holder.job_id}, which has waited past the backfill window: "
                    "what frees up is held for it")
        c = self.capacity
        for need, free, held, cap, unit in (
                (d.cpu, self.cpu, self.held_cpu, c.cpu, "CPU"),
                (d.gpu, self.gpu, self.held_gpu, c.gpu, "GPU"),
                (d.memory_mb, self.memory_mb, self.held_memory_mb, c.memory_mb, "MB memory")):
            if need > free + held + EPS:
                many = "s" if unit != "MB memory" and need != 1 else ""
                return (f"waiting for {need:g} {unit}{many} "
                        f"({cap - free - held:g} of {cap:g} in use)")
        return "waiting for resources held for other jobs"


@dataclass
class Decision:
    admitted: list[str] = field(default_factory=list)
    over_quota: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # every queued job, in the order looked at
    waiting: dict[str, str] = field(default_factory=dict)  # why each job not admitted waits
    _places: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def position(self, job_id: str) -> int | None:
        """The job's place in the queue (0 = next in line), None when it was not queued."""
        if len(self._places) != len(self.order):
            self._places = {j: i for i, j in enumerate(self.order)}
        return self._places.get(job_id)


def quota_shortfall(held: _Held, d: Demand, limit: Limit | None) -> str | None:
    """Which limit of the project's quota `d` would pass, in words; None when it is within."""
    if limit is None:
        return None
    if limit.jobs is not None and held.jobs + 1 > limit.jobs:
        return f"project quota: max_jobs {limit.jobs} reached"
    if limit.cpu is not None and held.cpu + d.cpu > limit.cpu + EPS:
        return f"project quota: max_cpu {limit.cpu:g} ({held.cpu:g} held, {d.cpu:g} asked)"
    if limit.gpu is not None and held.gpu + d.gpu > limit.gpu:
        return f"project quota: max_gpu {limit.gpu} ({held.gpu} held, {d.gpu} asked)"
    return None


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
    pool = _Pool(capacity, capacity.cpu, capacity.gpu, capacity.memory_mb)
    held: dict[str, _Held] = defaultdict(_Held)
    for r in running:
        pool.take(r)
        held[r.project].add(r)

    decision = Decision()
    for level in _by_priority(queued):
        _admit_level(level, pool, held, quotas, decision, now, reserve_after_s)
    return decision


def _by_priority(queued: Iterable[Demand]) -> list[list[Demand]]:
    levels: dict[int, list[Demand]] = defaultdict(list)
    for d in queued:
        levels[d.priority].append(d)
    return [sorted(levels[p], key=lambda d: (d.order, d.job_id))
            for p in sorted(levels, reverse=True)]


def _admit_level(level: Sequence[Demand], pool: _Pool, held: dict[str, _Held],
                 quotas: Mapping[str, Limit], decision: Decision, now: float,
                 reserve_after_s: float | None) -> None:
    # One FIFO per project; take the head of the project holding the least CPU next.
    fifos: dict[str, list[Demand]] = defaultdict(list)
    for d in level:
        fifos[d.project].append(d)
    heads = {p: 0 for p in fifos}
    heap = [(held[p].cpu, q[0].order, p) for p, q in fifos.items()]
    heapq.heapify(heap)
    blocked: list[Demand] = []
    while heap:
        _, _, project = heapq.heappop(heap)
        i = heads[project]
        d = fifos[project][i]
        heads[project] = i + 1
        decision.order.append(d.job_id)
        over = quota_shortfall(held[project], d, quotas.get(project))
        if over is not None:
            decision.over_quota.append(d.job_id)
            decision.waiting[d.job_id] = over
        elif pool.fits(d):
            pool.take(d)
            held[project].add(d)
            decision.admitted.append(d.job_id)
        else:
            decision.waiting[d.job_id] = pool.why_not(d)
            if reserve_after_s is None:
                pass  # pure backfill: nothing is ever held back
            elif now - d.order >= reserve_after_s:
                pool.hold(d)  # starving: its own priority may not go around it either
                decision.waiting[d.job_id] += "; what frees up is held for it"
            else:
                blocked.append(d)
        if heads[project] < len(fifos[project]):
            nxt = fifos[project][heads[project]]
            heapq.heappush(heap, (held[project].cpu, nxt.order, project))
    # Jobs of lower priority never take what a waiting job of this one needs.
    for d in blocked:
        pool.hold(d)
