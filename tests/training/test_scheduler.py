"""Admission decisions: capacity, priorities, quotas, gangs and backfill."""

from __future__ import annotations

from modelyard.training.scheduler import Capacity, Demand, Limit, admit

CAP2 = Capacity(cpu=2, gpu=0, memory_mb=8192)


def job(job_id: str, cpu: float = 1, *, project: str = "alpha", priority: int = 0,
        order: float = 0.0, gpu: int = 0, memory_mb: int = 100) -> Demand:
    return Demand(job_id, project, cpu, gpu, memory_mb, priority, order)


def run_to_completion(queue: list[Demand], cap: Capacity) -> list[list[str]]:
    """Simulates rounds in which every running job finishes; returns who ran together."""
    rounds: list[list[str]] = []
    while queue:
        started = admit(queue, [], cap).admitted
        assert started, "a round admitted nothing although the cluster was idle"
        used = sum(d.cpu for d in queue if d.job_id in started)
        assert used <= cap.cpu
        rounds.append(started)
        queue = [d for d in queue if d.job_id not in started]
    return rounds


def test_two_cpus_never_over_committed_and_every_job_finishes() -> None:
    queue = [job("big", 2, order=0), job("a", 1, order=1), job("b", 1, order=2),
             job("c", 1, order=3)]
    rounds = run_to_completion(queue, CAP2)
    assert sorted(j for r in rounds for j in r) == ["a", "b", "big", "c"]
    assert rounds[0] == ["big"]


def test_running_jobs_hold_their_share() -> None:
    decision = admit([job("a"), job("b", order=1)], [job("r", 1)], CAP2)
    assert decision.admitted == ["a"]


def test_higher_priority_goes_first() -> None:
    queue = [job("low", 2, order=0, priority=0), job("high", 2, order=5, priority=10)]
    assert admit(queue, [], CAP2).admitted == ["high"]


def test_fifo_within_a_priority() -> None:
    queue = [job("second", 2, order=2), job("first", 2, order=1)]
    assert admit(queue, [], CAP2).admitted == ["first"]


def test_project_over_quota_waits_while_others_run() -> None:
    quotas = {"alpha": Limit(cpu=1)}
    queue = [job("a2", order=1), job("b1", project="beta", order=2)]
    decision = admit(queue, [job("a1")], CAP2, quotas)
    assert decision.admitted == ["b1"]
    assert decision.over_quota == ["a2"]
    assert admit(queue, [], CAP2, quotas).admitted[0] == "a2"


def test_job_count_quota() -> None:
    decision = admit([job("a2", 0.5, order=1)], [job("a1", 0.5)], CAP2, {"alpha": Limit(jobs=1)})
    assert decision.admitted == []


def test_gang_is_admitted_whole_or_not_at_all() -> None:
    gang = job("gang", 2, order=0)  # two workers of one CPU each, totalled
    assert admit([gang], [job("r", 1)], CAP2, reserve_after_s=None).admitted == []
    assert admit([gang], [], CAP2).admitted == ["gang"]


def test_small_jobs_backfill_around_a_blocked_big_one() -> None:
    queue = [job("big", 2, order=0), job("small", 1, order=1)]
    decision = admit(queue, [job("r", 1)], CAP2, now=10, reserve_after_s=300)
    assert decision.admitted == ["small"]


def test_a_starving_big_job_stops_backfill() -> None:
    queue = [job("big", 2, order=0), job("small", 1, order=1)]
    decision = admit(queue, [job("r", 1)], CAP2, now=1000, reserve_after_s=300)
    assert decision.admitted == []


def test_fair_share_between_projects_of_equal_priority() -> None:
    cap = Capacity(cpu=2, gpu=0, memory_mb=8192)
    queue = [job("a2", order=1), job("a3", order=2), job("b1", project="beta", order=3)]
    decision = admit(queue, [job("a1")], Capacity(cpu=3, gpu=0, memory_mb=8192))
    assert decision.admitted == ["b1", "a2"]
    assert admit(queue, [], cap).admitted == ["a2", "b1"]


def test_gpus_and_memory_count_too() -> None:
    cap = Capacity(cpu=8, gpu=1, memory_mb=1000)
    queue = [job("g1", gpu=1, order=0), job("g2", gpu=1, order=1),
             job("m", memory_mb=2000, order=2), job("ok", memory_mb=500, order=3)]
    assert admit(queue, [], cap).admitted == ["g1", "ok"]


def test_ten_thousand_queued_jobs_admit_the_highest_priority_first() -> None:
    queue = [job(f"j{i}", 1, project=f"p{i % 7}", priority=i % 3, order=i) for i in range(10_000)]
    decision = admit(queue, [], Capacity(cpu=64, gpu=0, memory_mb=10**9))
    assert len(decision.admitted) == 64
    assert all(int(j[1:]) % 3 == 2 for j in decision.admitted)


def test_a_waiting_higher_priority_job_is_not_held_back_by_smaller_lower_priority_ones() -> None:
    # Issue 22 item 14: a priority-10 job waited behind smaller priority-0 jobs that took every
    # CPU a running job gave back, for as long as the backfill window.
    queue = [job("high", 2, priority=10, order=0), job("low", 1, order=1)]
    decision = admit(queue, [job("r", 1)], CAP2, now=29, reserve_after_s=300)
    assert decision.admitted == []
    assert decision.waiting["low"] == "behind higher-priority job high"
    # Within one priority, a small job still goes around a big one until the window passes.
    equal = [job("big", 2, order=0), job("small", 1, order=1)]
    assert admit(equal, [job("r", 1)], CAP2, now=29, reserve_after_s=300).admitted == ["small"]


def test_queue_order_and_reasons_come_from_the_admission_decision() -> None:
    # Issue 22 item 13: fair share decides the place (beta holds nothing, alpha holds a job),
    # and every job left waiting says why.
    cap = Capacity(cpu=4, gpu=0, memory_mb=8192)
    queue = [job("a2", 2, order=1), job("a3", 1, order=2), job("b1", 1, project="beta", order=3),
             job("b2", 4, project="beta", order=4)]
    decision = admit(queue, [job("a1", 1)], cap, {"alpha": Limit(jobs=2)}, now=10,
                     reserve_after_s=300)
    assert decision.admitted == ["b1", "a2"]
    assert decision.order == ["b1", "a2", "b2", "a3"]
    assert decision.position("b2") == 2
    assert decision.waiting == {"b2": "waiting for 4 CPUs (4 of 4 in use)",
                                "a3": "project quota: max_jobs 2 reached"}
