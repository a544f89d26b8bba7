"""The HPO store and Optuna's own storage on each metadata backend (SQLite; PostgreSQL as
integration): same behaviour, and Optuna never shares modelyard's schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.hpo import _optuna
from modelyard.hpo.models import Study, StudySpec, StudyState, Trial, TrialState
from modelyard.hpo.store import SqlHpoStore
from tests._servers.databases import BACKENDS, fresh_database

SPEC = StudySpec.model_validate({
    "name": "s1", "trainer": "digits-cnn", "dataset_snapshot": "snap_x",
    "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}},
    "objective": {"metric": "val_accuracy"}, "n_trials": 2})


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request, tmp_path) as database:
        yield database


def _study(name: str = "s1") -> Study:
    return Study(id=new_id("study"), project="alpha", name=name, state=StudyState.running,
                 spec=SPEC.model_copy(update={"name": name}), experiment=name,
                 created_by="ada", created_at=utcnow(), finished_at=None, message="")


def _trial(study: Study, number: int) -> Trial:
    return Trial(id=new_id("trial"), study_id=study.id, number=number, state=TrialState.pending,
                 params={"lr": 0.01}, value=None, last_step=None, job_id=None, run_id=None,
                 optuna_trial_id=number, created_at=utcnow(), finished_at=None, message="")


def test_studies_are_unique_per_project_and_found_by_id_or_name(db: Database) -> None:
    store = SqlHpoStore(db)
    s = store.add_study(_study())
    with pytest.raises(AlreadyExists):
        store.add_study(_study())
    assert store.get_study("alpha", "s1").id == s.id
    assert store.get_study("alpha", s.id).spec == SPEC
    with pytest.raises(NotFound):
        store.get_study("beta", "s1")
    assert store.update_study(s.id, [StudyState.completed], message="x") is None
    done = store.update_study(s.id, [StudyState.running], state=StudyState.stopped)
    assert done is not None and done.state is StudyState.stopped
    assert store.list_studies("alpha", [StudyState.running]) == []


def test_a_trial_number_is_counted_once_and_updates_are_compare_and_set(db: Database) -> None:
    store = SqlHpoStore(db)
    s = store.add_study(_study())
    t = store.add_trial(_trial(s, 0))
    with pytest.raises(AlreadyExists):
        store.add_trial(_trial(s, 0))
    running = store.update_trial(t.id, [TrialState.pending], state=TrialState.running,
                                 job_id="job_1")
    assert running is not None and running.job_id == "job_1"
    assert store.update_trial(t.id, [TrialState.pending], state=TrialState.failed) is None
    assert store.trial_of_job("job_1") == running
    assert [x.number for x in store.trials(s.id)] == [0]


def test_optuna_keeps_its_own_storage(db: Database, tmp_path: Path) -> None:
    storage = _optuna.open_storage(db.url, tmp_path)
    study = _optuna.load(storage, "study_x", SPEC, 12)
    trial = study.ask()
    trial.report(0.5, 0)
    study.tell(trial, 0.9)
    again = _optuna.load(storage, "study_x", SPEC, 12)  # as after a restart
    assert again.best_value == 0.9
    tables = set(sa.inspect(db.engine).get_table_names())
    assert "trials" not in tables and "hpo_trials" in tables
    storage.engine.dispose()
