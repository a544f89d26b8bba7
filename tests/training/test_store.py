"""JobStore conformance suite: the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from modelyard.core.errors import NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.training.models import Job, JobState, Quota, Resources
from modelyard.training.store import JobStore, SqlJobStore
from tests._servers.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    with fresh_database(request, tmp_path, "training@head") as database:
        yield SqlJobStore(database)


def _job(project: str = "alpha", priority: int = 0, seconds: int = 0, **res: float) -> Job:
    at = utcnow() + timedelta(seconds=seconds)
    return Job(
        id=new_id("job"), project=project, name="j", state=JobState.queued, trainer="digits-cnn",
        code=None, code_hash="a" * 64, dataset_snapshot="snap_x", hyperparameters={"lr": 0.1},
        resources=Resources(**res), priority=priority, timeout_s=60, max_retries=1, attempt=0,
        created_by="eve", created_at=at, queued_at=at, scheduled_at=None, started_at=None,
        finished_at=None, run_id=None, experiment="e", exit_code=None, message="",
        checkpoint=None, model_version=None, progress={}, gpus=[])


def test_a_job_reads_back_as_it_was_added(store: JobStore) -> None:
    job = store.add(_job(cpu=0.5, workers=2, gpu=1, memory_mb=300))
    got = store.get("alpha", job.id)
    assert got.model_dump(exclude={"created_at", "queued_at"}) == job.model_dump(
        exclude={"created_at", "queued_at"})
    with pytest.raises(NotFound):
        store.get("beta", job.id)


def test_update_is_compare_and_set_on_state(store: JobStore) -> None:
    job = store.add(_job())
    assert store.update(job.id, [JobState.running], state=JobState.succeeded) is None
    moved = store.update(job.id, [JobState.queued], state=JobState.scheduled, gpus=[0])
    assert moved is not None and (moved.state, moved.gpus) == (JobState.scheduled, [0])
    assert store.update(job.id, [JobState.queued], state=JobState.scheduled) is None


def test_demands_total_every_workers_share(store: JobStore) -> None:
    first = store.add(_job(seconds=0))
    second = store.add(_job(seconds=1))
    urgent = store.add(_job(priority=5, seconds=2, cpu=2, workers=3))
    demands = {d.job_id: d for d in store.queued_demands()}
    assert set(demands) == {first.id, second.id, urgent.id}
    assert (demands[urgent.id].cpu, demands[urgent.id].priority) == (6, 5)


def test_list_pages_newest_first_and_filters_by_state(store: JobStore) -> None:
    ids = [store.add(_job()).id for _ in range(3)]
    store.update(ids[0], None, state=JobState.cancelled)
    page = store.list_jobs("alpha", None, 2, None)
    assert [j.id for j in page] == ids[::-1][:2]
    assert [j.id for j in store.list_jobs("alpha", None, 2, page[-1].id)] == [ids[0]]
    assert [j.id for j in store.list_jobs("alpha", [JobState.cancelled], 10, None)] == [ids[0]]


def test_quotas_and_code_packages_are_per_project(store: JobStore) -> None:
    store.set_quota("alpha", Quota(max_cpu=2, max_jobs=1))
    store.set_quota("alpha", Quota(max_jobs=3))
    assert store.quotas() == {"alpha": Quota(max_jobs=3)}
    store.add_code("alpha", "b" * 64, 10, "eve")
    store.add_code("alpha", "b" * 64, 10, "eve")  # idempotent
    assert store.has_code("alpha", "b" * 64) and not store.has_code("beta", "b" * 64)
