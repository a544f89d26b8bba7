"""Persistence of studies and trials; rows never leave this module."""

from __future__ import annotations

import abc
from typing import Any

import sqlalchemy as sa

from modelyard.core.db import Database
from modelyard.core.errors import AlreadyExists, NotFound
from modelyard.hpo.models import Study, StudySpec, StudyState, Trial, TrialState
from modelyard.hpo.tables import StudyRow, TrialRow


class HpoStore(abc.ABC):
    """Studies and their trials. Returned objects are copies; updates are compare-and-set."""

    @abc.abstractmethod
    def add_study(self, study: Study) -> Study:
        """Raises AlreadyExists when the project has a study of that name."""

    @abc.abstractmethod
    def get_study(self, project: str | None, ref: str) -> Study:
        """By id or (with a project) by name; raises NotFound."""

    @abc.abstractmethod
    def list_studies(self, project: str | None, states: list[StudyState] | None) -> list[Study]:
        """Newest first."""

    @abc.abstractmethod
    def update_study(self, study_id: str, expect: list[StudyState] | None,
                     **values: Any) -> Study | None: ...

    @abc.abstractmethod
    def add_trial(self, trial: Trial) -> Trial:
        """Raises AlreadyExists when the study already has a trial of that number."""

    @abc.abstractmethod
    def trials(self, study_id: str) -> list[Trial]:
        """By number."""

    @abc.abstractmethod
    def trial_of_job(self, job_id: str) -> Trial | None: ...

    @abc.abstractmethod
    def update_trial(self, trial_id: str, expect: list[TrialState] | None,
                     **values: Any) -> Trial | None: ...


def _study(r: StudyRow) -> Study:
    return Study(id=r.id, project=r.project, name=r.name, state=StudyState(r.state),
                 spec=StudySpec.model_validate(r.spec), experiment=r.experiment,
                 created_by=r.created_by, created_at=r.created_at, finished_at=r.finished_at,
                 message=r.message, best_model_version=r.best_model_version)


def _trial(r: TrialRow) -> Trial:
    return Trial(id=r.id, study_id=r.study_id, number=r.number, state=TrialState(r.state),
                 params=dict(r.params), value=r.value, last_step=r.last_step, job_id=r.job_id,
                 run_id=r.run_id, optuna_trial_id=r.optuna_trial_id, created_at=r.created_at,
                 finished_at=r.finished_at, message=r.message)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") and not isinstance(v, (int, float)) else v)
            for k, v in values.items()}


class SqlHpoStore(HpoStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_study(self, study: Study) -> Study:
        try:
            with self.db.session() as s:
                s.add(StudyRow(
                    id=study.id, project=study.project, name=study.name,
                    state=study.state.value, spec=study.spec.model_dump(mode="json"),
                    experiment=study.experiment, created_by=study.created_by,
                    created_at=study.created_at, finished_at=None, message=study.message,
                    best_model_version=None))
        except AlreadyExists:
            raise AlreadyExists(f"project {study.project!r} already has a study named "
                                f"{study.name!r}; pick another name",
                                {"field": "name", "value": study.name}) from None
        return study

    def get_study(self, project: str | None, ref: str) -> Study:
        with self.db.session() as s:
            q = sa.select(StudyRow).where(
                sa.or_(StudyRow.id == ref, sa.and_(StudyRow.name == ref,
                                                   StudyRow.project == project)))
            if project is not None:
                q = q.where(StudyRow.project == project)
            row = s.scalars(q).first()
            if row is None:
                raise NotFound(f"no study {ref!r}" + (f" in project {project!r}" if project
                                                      else ""), {"study": ref})
            return _study(row)

    def list_studies(self, project: str | None, states: list[StudyState] | None) -> list[Study]:
        with self.db.session() as s:
            q = sa.select(StudyRow).order_by(StudyRow.created_at.desc(), StudyRow.id.desc())
            if project is not None:
                q = q.where(StudyRow.project == project)
            if states:
                q = q.where(StudyRow.state.in_([st.value for st in states]))
            return [_study(r) for r in s.scalars(q)]

    def update_study(self, study_id: str, expect: list[StudyState] | None,
                     **values: Any) -> Study | None:
        with self.db.session() as s:
            q = sa.update(StudyRow).where(StudyRow.id == study_id)
            if expect is not None:
                q = q.where(StudyRow.state.in_([st.value for st in expect]))
            if s.execute(q.values(**_plain(values))).rowcount == 0:  # type: ignore[attr-defined]
                return None
            row = s.get(StudyRow, study_id)
            assert row is not None
            s.refresh(row)
            return _study(row)

    def add_trial(self, trial: Trial) -> Trial:
        with self.db.session() as s:
            s.add(TrialRow(
                id=trial.id, study_id=trial.study_id, number=trial.number,
                state=trial.state.value, params=trial.params, value=trial.value,
                last_step=trial.last_step, job_id=trial.job_id, run_id=trial.run_id,
                optuna_trial_id=trial.optuna_trial_id, created_at=trial.created_at,
                finished_at=trial.finished_at, message=trial.message))
        return trial

    def trials(self, study_id: str) -> list[Trial]:
        with self.db.session() as s:
            q = sa.select(TrialRow).where(TrialRow.study_id == study_id).order_by(TrialRow.number)
            return [_trial(r) for r in s.scalars(q)]

    def trial_of_job(self, job_id: str) -> Trial | None:
        with self.db.session() as s:
            row = s.scalars(sa.select(TrialRow).where(TrialRow.job_id == job_id)).first()
            return _trial(row) if row else None

    def update_trial(self, trial_id: str, expect: list[TrialState] | None,
                     **values: Any) -> Trial | None:
        with self.db.session() as s:
            q = sa.update(TrialRow).where(TrialRow.id == trial_id)
            if expect is not None:
                q = q.where(TrialRow.state.in_([st.value for st in expect]))
            if s.execute(q.values(**_plain(values))).rowcount == 0:  # type: ignore[attr-defined]
                return None
            row = s.get(TrialRow, trial_id)
            assert row is not None
            s.refresh(row)
            return _trial(row)
