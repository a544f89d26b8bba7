"""Use cases of the HPO component: create, inspect, compare and stop studies.

The `HpoController` (controller.py) drives running studies in the background; this module
holds what a request does.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import FailedPrecondition, InvalidArgument, ModelyardError, NotFound
from modelyard.core.ids import check_name, new_id, utcnow
from modelyard.hpo import _space
from modelyard.hpo.models import Study, StudySpec, StudyState, Trial, TrialState
from modelyard.hpo.store import SqlHpoStore

if TYPE_CHECKING:
    from modelyard.core.db import Database
    from modelyard.core.settings import Settings
    from modelyard.datasets.service import DatasetService
    from modelyard.registry.service import RegistryService
    from modelyard.training.service import TrainingService

log = logging.getLogger("modelyard.hpo")

# What each built-in trainer logs through `runtime.log_metrics`, by step (epoch).
REPORTED_METRICS: dict[str, tuple[str, ...]] = {
    "digits-cnn": ("val_accuracy", "train_loss"),
    "intent-classifier": ("val_accuracy", "train_loss"),
}


class HpoService:
    def __init__(self, db: Database, settings: Settings, training: TrainingService,
                 datasets: DatasetService, registry: RegistryService) -> None:
        from modelyard.hpo.controller import HpoController

        self.db = db
        self.settings = settings
        self.training = training
        self.datasets = datasets
        self.registry = registry
        self.store = SqlHpoStore(db)
        self.lock = threading.RLock()  # one writer of trials at a time: controller or a stop
        self.controller = HpoController(self)

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        """A trial's job ending (`job.ended`) frees a slot: start the next trial right away."""
        if kind == "job.ended":
            self.controller.wake()

    # background loop -------------------------------------------------------------------
    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def tick(self) -> None:
        """One controller round (the loop calls it; tests may too)."""
        self.controller.tick()

    # studies ---------------------------------------------------------------------------
    def create(self, project: str, user: str, spec: StudySpec) -> Study:
        """Validates everything first; a study that cannot run is refused, nothing stored."""
        check_name(spec.name, "study")
        experiment = check_name(spec.experiment, "experiment") if spec.experiment else spec.name
        if spec.best_alias:
            check_name(spec.best_alias, "best_alias")
        self._check_target(project, spec)
        if spec.sampler.kind == "grid":
            points = math.prod(len(v) for v in _space.grid(spec.search_space).values())
            if spec.n_trials > points:
                raise InvalidArgument(f"the grid has {points} points; give n_trials <= {points} "
                                      "(each trial runs one point)", {"field": "n_trials"})
        now = utcnow()
        study = Study(id=new_id("study"), project=project, name=spec.name,
                      state=StudyState.running, spec=spec, experiment=experiment,
                      created_by=user, created_at=now, finished_at=None, message="")
        self.store.add_study(study)
        self.controller.wake()
        return self.get(project, study.id)

    def get(self, project: str, ref: str) -> Study:
        study = self.store.get_study(project, ref)
        trials = self.store.trials(study.id)
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state.value] = counts.get(t.state.value, 0) + 1
        best = best_trial(study, trials)
        if best is not None:
            best = self._with_metrics(project, best)
        return study.model_copy(update={"counts": counts, "best": best})

    def list_studies(self, project: str, state: StudyState | None = None) -> list[Study]:
        return [self.get(project, s.id)
                for s in self.store.list_studies(project, [state] if state else None)]

    def trials(self, project: str, ref: str) -> list[Trial]:
        """Every trial with its params and latest metrics side by side, by number."""
        study = self.store.get_study(project, ref)
        return [self._with_metrics(project, t) for t in self.store.trials(study.id)]

    def stop_study(self, project: str, ref: str, user: str) -> Study:
        """Stops a running study: its active trials' jobs are cancelled, no new ones start."""
        study = self.store.get_study(project, ref)
        with self.lock:
            done = self.store.update_study(study.id, [StudyState.running],
                                           state=StudyState.stopped, finished_at=utcnow(),
                                           message=f"stopped by {user}")
            if done is None:
                raise FailedPrecondition(f"study {study.name!r} already ended "
                                         f"({self.store.get_study(project, study.id).state.value})"
                                         "; nothing to stop", {"study": study.id})
            for t in self.store.trials(study.id):
                if t.state.terminal:
                    continue
                self.store.update_trial(t.id, [t.state], state=TrialState.cancelled,
                                        finished_at=utcnow(), message=f"study stopped by {user}")
                if t.job_id:
                    self.cancel_job(project, t.job_id, f"study {study.name} stopped by {user}")
        return self.get(project, study.id)

    def cancel_job(self, project: str, job_id: str, reason: str) -> None:
        try:
            self.training.cancel(project, job_id, reason=reason)
        except FailedPrecondition:
            pass  # it ended on its own meanwhile
        except NotFound:
            log.warning("trial job %s is gone", job_id)

    def is_pruned(self, project: str, job_id: str) -> bool:
        """Whether `job_id` runs a trial that was pruned (or whose study was stopped).

        A trial asks between epochs, after flushing the epoch's metrics: the pruner decides
        on them now (not at the controller's next round), so a pruned trial stops at this
        epoch boundary and its job is cancelled, which frees its resources at once."""
        trial = self.store.trial_of_job(job_id)
        if trial is None:
            return False
        study = self.store.get_study(project, trial.study_id)  # NotFound outside the project
        if trial.state is TrialState.running and study.state is StudyState.running:
            with self.lock:
                trial = self.controller.decide(study, job_id) or trial
        return trial.state in (TrialState.pruned, TrialState.cancelled)

    # helpers ---------------------------------------------------------------------------
    def _with_metrics(self, project: str, t: Trial) -> Trial:
        if not t.job_id:
            return t
        try:
            job = self.training.get(project, t.job_id)
        except NotFound:
            return t
        metrics = {k: v for k, v in job.progress.items() if k != "step"}
        if "step" in job.progress:
            metrics["step"] = job.progress["step"]
        return t.model_copy(update={"metrics": metrics, "run_id": t.run_id or job.run_id})

    def _check_target(self, project: str, spec: StudySpec) -> None:
        from modelyard.training.trainers import get_builtin, validate_params

        if (spec.trainer is None) == (spec.code is None):
            raise InvalidArgument("give exactly one of `trainer` (a built-in name) or `code` "
                                  "(an uploaded package)", {"field": "trainer"})
        fixed_overlap = sorted(set(spec.hyperparameters) & set(spec.search_space))
        if fixed_overlap:
            raise InvalidArgument(f"{', '.join(fixed_overlap)} is both fixed (hyperparameters) "
                                  "and searched (search_space); keep one",
                                  {"field": "hyperparameters"})
        known: set[str] | None = None
        check: _space.Check | None = None
        if spec.trainer is not None:
            builtin = get_builtin(spec.trainer)
            known = set(builtin.params.model_fields)
            validate_params(builtin, spec.hyperparameters)

            def check(values: dict[str, Any]) -> None:
                validate_params(builtin, {**spec.hyperparameters, **values})

            metrics = REPORTED_METRICS.get(spec.trainer)
            if metrics is not None and spec.objective.metric not in metrics:
                raise InvalidArgument(
                    f"trainer {spec.trainer!r} does not report {spec.objective.metric!r}; "
                    f"its metrics are {', '.join(metrics)}",
                    {"field": "objective.metric", "value": spec.objective.metric})
            if spec.dataset_snapshot is None:
                raise InvalidArgument(f"trainer {spec.trainer!r} needs a dataset_snapshot",
                                      {"field": "dataset_snapshot"})
        else:  # every trial runs this package: refuse the study, not each trial, if it cannot
            self.training.check_code(project, spec.code)  # type: ignore[arg-type]
        _space.validate(spec.search_space, known, check)
        self._check_resources(spec)
        if spec.dataset_snapshot is not None:
            self._check_snapshot(project, spec.dataset_snapshot)

    def _check_resources(self, spec: StudySpec) -> None:
        r, cap = spec.resources, self.training.capacity
        if r.total_cpu > cap.cpu + 1e-9 or r.total_gpu > cap.gpu or \
                r.total_memory_mb > cap.memory_mb:
            raise InvalidArgument(
                f"one trial asks for {r.total_cpu:g} cpu, {r.total_gpu} gpu, "
                f"{r.total_memory_mb} MB but the cluster has {cap.cpu:g} cpu, {cap.gpu} gpu, "
                f"{cap.memory_mb} MB: ask for less", {"field": "resources"})

    def _check_snapshot(self, project: str, snapshot_id: str) -> None:
        try:
            snap = self.datasets.get_snapshot(project, snapshot_id)
        except NotFound:
            raise InvalidArgument(f"no dataset snapshot {snapshot_id!r} in project "
                                  f"{project!r}", {"field": "dataset_snapshot"}) from None
        status = str(getattr(snap.status, "value", snap.status))
        if status != "ready":
            raise InvalidArgument(f"dataset snapshot {snapshot_id} is {status}, not ready: wait "
                                  "for it", {"field": "dataset_snapshot", "status": status})

    def record_best(self, study: Study, best: Trial | None) -> dict[str, Any] | None:
        """Links the best trial's model version to the study (and moves the alias)."""
        if best is None or not best.job_id:
            return None
        try:
            mv = self.training.get(study.project, best.job_id).model_version
        except NotFound:
            return None
        if not mv:
            return None
        try:
            self.registry.add_edge(study.project, "study", study.id, "model_version",
                                   str(mv["id"]), "best_trial")
            if study.spec.best_alias:
                self.registry.set_alias(study.project, str(mv["model"]), study.spec.best_alias,
                                        int(mv["version"]), actor=study.created_by)
        except ModelyardError:
            log.warning("could not link the best model version of study %s", study.id,
                        exc_info=True)
        return mv


def best_trial(study: Study, trials: list[Trial]) -> Trial | None:
    done = [t for t in trials if t.state is TrialState.completed and t.value is not None]
    if not done:
        return None
    sign = 1.0 if study.spec.objective.direction == "maximize" else -1.0
    return max(done, key=lambda t: (sign * (t.value or 0.0), -t.number))
