"""Optuna behind one small seam: its own storage, and samplers/pruners built from a spec.

Optuna keeps its own tables (and its own `alembic_version`), so it never shares a schema with
modelyard's migrations: a SQLite file under the data dir, or an `optuna` schema when the
metadata database is PostgreSQL. Samplers and pruners are not stored by Optuna; they are
rebuilt from the study spec whenever a study is loaded, and a seeded sampler is seeded afresh
for every trial from (seed, trial number): rebuilt from the bare seed, a restarted study's
next trials would replay the random draws of its first ones.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa

from modelyard.core.private import private_dir, private_file, private_files
from modelyard.hpo import _space
from modelyard.hpo.models import PrunerSpec, SamplerSpec, StudySpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
SCHEMA = "optuna"


def open_storage(database_url: str, home: Path) -> optuna.storages.RDBStorage:
    if database_url.startswith("sqlite"):
        path = home / "hpo" / "optuna.db"
        private_dir(path.parent)
        private_file(path)  # before SQLite opens it: its -wal and -shm take its mode
        private_files(Path(f"{path}-wal"), Path(f"{path}-shm"))

        def connect() -> sqlite3.Connection:
            # As modelyard's own SQLite database: WAL, and a sync per checkpoint rather than
            # per commit (still safe when the server is killed; a trial's asks and tells are
            # several commits each).
            conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        return optuna.storages.RDBStorage(f"sqlite:///{path}",
                                          engine_kwargs={"creator": connect})
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    finally:
        engine.dispose()
    return optuna.storages.RDBStorage(
        database_url, engine_kwargs={"connect_args": {"options": f"-csearch_path={SCHEMA}"},
                                     "pool_pre_ping": True})


class _GridSampler(optuna.samplers.GridSampler):
    """A grid sampler that leaves stopping to the controller's budget: Optuna's own calls
    `study.stop()`, which only works inside `study.optimize`."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                    state: optuna.trial.TrialState, values: Any) -> None:
        return None


def trial_seed(seed: int | None, number: int | None) -> int | None:
    """The seed of trial `number`'s draws: a function of the study's seed and the trial alone,
    so the study draws the same parameters whether or not its server restarted midway."""
    if seed is None or number is None:
        return seed
    digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def sampler(spec: SamplerSpec, study: StudySpec,
            number: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler for trial `number` (None: one for reads and tells, seeded by the spec)."""
    if spec.kind == "grid":
        # Its seed only orders the grid, and it never draws a point a trial already holds.
        return _GridSampler(_space.grid(study.search_space), seed=spec.seed)
    seed = trial_seed(spec.seed, number)
    if spec.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = spec.n_startup_trials
    if spec.kind == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=1 if startup is None else startup,
            warn_independent_sampling=False,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed))
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=10 if startup is None else startup)


def pruner(spec: PrunerSpec, max_steps: int | None) -> optuna.pruners.BasePruner:
    if spec.kind in ("asha", "successive_halving"):
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec.min_resource, reduction_factor=spec.reduction_factor)
    if spec.kind == "hyperband":
        top = spec.max_resource or max_steps
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource, max_resource=top if top else "auto",
            reduction_factor=spec.reduction_factor)
    if spec.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.n_startup_trials,
                                           n_warmup_steps=spec.n_warmup_steps)
    return optuna.pruners.NopPruner()


def load(storage: optuna.storages.RDBStorage, study_id: str, spec: StudySpec,
         max_steps: int | None) -> optuna.Study:
    """Creates the Optuna study on first use; loads it (with a fresh sampler) afterwards."""
    return optuna.create_study(
        storage=storage, study_name=study_id, direction=spec.objective.direction,
        sampler=sampler(spec.sampler, spec), pruner=pruner(spec.pruner, max_steps),
        load_if_exists=True)


def trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    return optuna.Trial(study, trial_id)


def frozen(storage: optuna.storages.RDBStorage, trial_id: int) -> Any:
    return storage.get_trial(trial_id)


TrialState = optuna.trial.TrialState
