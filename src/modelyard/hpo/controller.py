"""The study controller: one background thread that drives every running study.

Each round, per study: feed new intermediate values of active trials to Optuna's pruner,
cancel the jobs of pruned trials, tell Optuna the final value of finished ones, then ask for
new trials until `max_parallel` trial jobs are active or the budget is spent.

Durability: a trial row (with its Optuna trial id) is committed before its job is submitted,
and the job is named after the trial, so a restarted server re-attaches to the job instead of
submitting a second one. Every step is idempotent and re-run after a restart: a trial is
never lost nor counted twice; Optuna trials asked but never recorded are failed at start.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import optuna

from modelyard.core.errors import ModelyardError, NotFound
from modelyard.core.ids import new_id, utcnow
from modelyard.hpo import _optuna, _space
from modelyard.hpo.models import Study, StudyState, Trial, TrialState
from modelyard.training.models import Job, JobSpec, JobState

if TYPE_CHECKING:
    from modelyard.hpo.service import HpoService

log = logging.getLogger("modelyard.hpo")
FINAL = {TrialState.completed: _optuna.TrialState.COMPLETE,
         TrialState.pruned: _optuna.TrialState.PRUNED}


def job_name(study: Study, number: int) -> str:
    return f"{study.name}-trial-{number}"


class HpoController:
    def __init__(self, svc: HpoService, busy_s: float = 0.1, idle_s: float = 2.0) -> None:
        self.svc = svc
        self.store = svc.store
        # Quick rounds while a study runs (the gap between one trial's end and the next's
        # start is the controller's overhead); slow ones when idle (a create wakes it).
        self.busy_s, self.idle_s = busy_s, idle_s
        self._storage: optuna.storages.RDBStorage | None = None
        self._studies: dict[str, optuna.Study] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.reconcile()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hpo-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        try:  # opened now, not when the first study waits on it (creating it takes a while)
            _ = self.storage
        except Exception:
            log.exception("could not open the Optuna storage; retrying when a study needs it")
        while not self._stop.is_set():
            busy = True
            try:
                busy = self.tick()
            except Exception:
                log.exception("hpo controller round failed")
            self._wake.wait(self.busy_s if busy else self.idle_s)
            self._wake.clear()

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        if self._storage is None:
            self._storage = _optuna.open_storage(self.svc.settings.resolved_database_url,
                                                 self.svc.settings.home)
        return self._storage

    def optuna_study(self, study: Study) -> optuna.Study:
        if study.id not in self._studies:
            self._studies[study.id] = _optuna.load(self.storage, study.id, study.spec,
                                                   _max_steps(study))
        return self._studies[study.id]

    # rounds ------------------------------------------------------------------------------
    def tick(self) -> bool:
        """One round over the running studies; False when there was none."""
        studies = self.store.list_studies(None, [StudyState.running])
        for study in studies:
            with self.svc.lock:
                try:
                    self._advance(self.store.get_study(None, study.id))
                except Exception:  # noqa: BLE001 - one study's trouble must not stall the others
                    log.exception("study %s: round failed; retrying next round", study.id)
        return bool(studies)

    def reconcile(self) -> None:
        """After a restart: settle what a crash may have left half done, for every study."""
        with self.svc.lock:
            for study in self.store.list_studies(None, [StudyState.running]):
                ostudy = self.optuna_study(study)
                trials = self.store.trials(study.id)
                known = {t.optuna_trial_id for t in trials}
                for ft in ostudy.get_trials(deepcopy=False, states=(_optuna.TrialState.RUNNING,)):
                    if ft._trial_id not in known:  # asked, never recorded: not a trial of ours
                        ostudy.tell(ft.number, state=_optuna.TrialState.FAIL)
                for t in trials:
                    if t.state.terminal:
                        self._tell_final(ostudy, t)
                        if t.state in (TrialState.pruned, TrialState.cancelled) and t.job_id:
                            job = self._job(study, t)
                            if job is not None and not job.state.terminal:
                                self.svc.cancel_job(study.project, t.job_id, "trial ended")

    def _advance(self, study: Study) -> None:
        ostudy = self.optuna_study(study)
        for t in self.store.trials(study.id):
            if t.state is TrialState.pending:
                self._submit(study, ostudy, t, recover=True)
            elif t.state is TrialState.running:
                self._watch(study, ostudy, t)
        trials = self.store.trials(study.id)
        active = sum(1 for t in trials if not t.state.terminal)
        spec = study.spec
        while len(trials) < spec.n_trials and active < spec.max_parallel:
            trials.append(self._ask(study, ostudy, len(trials)))
            active += 1
        if len(trials) >= spec.n_trials and all(t.state.terminal for t in trials):
            self._finish(study, self.store.trials(study.id))

    def decide(self, study: Study, job_id: str) -> Trial | None:
        """Feeds the latest values of the trial `job_id` runs to the pruner now (the trial asks
        between epochs); the trial after (pruned, its job cancelled, when the pruner says so)."""
        t = self.store.trial_of_job(job_id)
        if t is not None and t.state is TrialState.running:
            try:
                self._watch(study, self.optuna_study(study), t)
            except Exception:  # noqa: BLE001 - the next round decides instead
                log.exception("study %s: deciding on trial %s failed", study.id, t.number)
            t = self.store.trial_of_job(job_id)
        return t

    # one trial -----------------------------------------------------------------------------
    def _ask(self, study: Study, ostudy: optuna.Study, number: int) -> Trial:
        # Seeded per trial, not once per load: a sampler rebuilt from the bare seed after a
        # restart would draw the first trials' parameters again.
        if study.spec.sampler.seed is not None and study.spec.sampler.kind != "grid":
            ostudy.sampler = _optuna.sampler(study.spec.sampler, study.spec, number)
        otrial = ostudy.ask()
        params = _space.suggest(otrial, study.spec.search_space)
        trial = self.store.add_trial(Trial(
            id=new_id("trial"), study_id=study.id, number=number, state=TrialState.pending,
            params=params, value=None, last_step=None, job_id=None, run_id=None,
            optuna_trial_id=otrial._trial_id, created_at=utcnow(), finished_at=None,
            message=""))
        return self._submit(study, ostudy, trial, recover=False)

    def _submit(self, study: Study, ostudy: optuna.Study, t: Trial, recover: bool) -> Trial:
        spec = study.spec
        # A pending trial seen again was maybe submitted before a crash, its job id unrecorded.
        job = self._find_job(study, t) if recover else None
        if job is None:
            try:
                job = self.svc.training.submit(study.project, study.created_by, JobSpec(
                    trainer=spec.trainer, code=spec.code, dataset_snapshot=spec.dataset_snapshot,
                    hyperparameters={**spec.hyperparameters, **t.params},
                    resources=spec.resources, priority=spec.priority, timeout_s=spec.timeout_s,
                    experiment=study.experiment, name=job_name(study, t.number)))
            except ModelyardError as e:
                done = self.store.update_trial(t.id, [TrialState.pending],
                                               state=TrialState.failed, finished_at=utcnow(),
                                               message=f"its job was refused: {e.message}")
                ostudy.tell(_otrial(ostudy, t), state=_optuna.TrialState.FAIL,
                            skip_if_finished=True)
                return done or t
        done = self.store.update_trial(t.id, [TrialState.pending], state=TrialState.running,
                                       job_id=job.id)
        try:
            self.svc.registry.add_edge(study.project, "study", study.id, "job", job.id, "trial")
        except ModelyardError:
            log.warning("lineage study %s → job %s not recorded", study.id, job.id)
        return done or t

    def _watch(self, study: Study, ostudy: optuna.Study, t: Trial) -> None:
        job = self._job(study, t)
        if job is None:
            self._end(ostudy, t, TrialState.failed, None, "its job no longer exists")
            return
        if job.run_id and job.run_id != t.run_id:
            t = self.store.update_trial(t.id, None, run_id=job.run_id) or t
        points = self._series(study, job)
        last = t.last_step
        fresh = [(step, value) for step, value in points if last is None or step > last]
        prune = False
        if fresh:  # Optuna's trial is read only when there is something new to tell it
            otrial = _otrial(ostudy, t)
            reported = set(self.storage.get_trial(t.optuna_trial_id or 0).intermediate_values)
            for step, value in fresh:
                if step not in reported:
                    otrial.report(value, step)
                last = step
                if not job.state.terminal and otrial.should_prune():
                    prune = True
                    break
        if last != t.last_step:
            t = self.store.update_trial(t.id, [TrialState.running], last_step=last) or t
        if job.state is JobState.succeeded:
            final = points[-1][1] if points else job.progress.get(study.spec.objective.metric)
            if final is None:
                self._end(ostudy, t, TrialState.failed, None,
                          f"its job logged no {study.spec.objective.metric!r}")
            else:
                self._end(ostudy, t, TrialState.completed, float(final), "")
        elif job.state is JobState.failed:
            self._end(ostudy, t, TrialState.failed, None, f"its job failed: {job.message}")
        elif job.state is JobState.cancelled:
            self._end(ostudy, t, TrialState.cancelled, None, f"its job was cancelled: "
                                                             f"{job.message}")
        elif prune:
            at = dict(points).get(last) if last is not None else None
            if self._end(ostudy, t, TrialState.pruned, at, f"pruned at step {last}"):
                self.svc.cancel_job(study.project, job.id,
                                    f"pruned by study {study.name} at step {last}")

    def _end(self, ostudy: optuna.Study, t: Trial, state: TrialState, value: float | None,
             message: str) -> bool:
        done = self.store.update_trial(t.id, [TrialState.running], state=state, value=value,
                                       finished_at=utcnow(), message=message)
        if done is not None:
            self._tell_final(ostudy, done)
        return done is not None

    def _tell_final(self, ostudy: optuna.Study, t: Trial) -> None:
        if t.optuna_trial_id is None:
            return
        if self.storage.get_trial(t.optuna_trial_id).state.is_finished():
            return
        state = FINAL.get(t.state, _optuna.TrialState.FAIL)
        otrial = _otrial(ostudy, t)
        if state is _optuna.TrialState.COMPLETE and t.value is not None:
            ostudy.tell(otrial, t.value, skip_if_finished=True)
        else:
            ostudy.tell(otrial, state=state, skip_if_finished=True)

    def _finish(self, study: Study, trials: list[Trial]) -> None:
        from modelyard.hpo.service import best_trial

        best = best_trial(study, trials)
        mv = self.svc.record_best(study, best)
        counts = {s: sum(1 for t in trials if t.state is s) for s in TrialState}
        summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        message = f"{len(trials)} trials ({summary})" + (
            f"; best {study.spec.objective.metric}={best.value:.4g} (trial {best.number})"
            if best and best.value is not None else "; no trial completed")
        self.store.update_study(study.id, [StudyState.running], state=StudyState.completed,
                                finished_at=utcnow(), message=message, best_model_version=mv)
        self._studies.pop(study.id, None)

    # reads -------------------------------------------------------------------------------
    def _job(self, study: Study, t: Trial) -> Job | None:
        if not t.job_id:
            return None
        try:
            return self.svc.training.get(study.project, t.job_id)
        except NotFound:
            return None

    def _series(self, study: Study, job: Job) -> list[tuple[int, float]]:
        if not job.run_id:
            return []
        try:
            points = self.svc.registry.get_metric_series(study.project, job.run_id,
                                                         study.spec.objective.metric)
        except NotFound:
            return []
        by_step = {int(p.step): float(p.value) for p in points}
        return sorted(by_step.items())

    def _find_job(self, study: Study, t: Trial) -> Job | None:
        """The job a crash left unrecorded: named after the trial, created after it."""
        name, token = job_name(study, t.number), None
        while True:
            page = self.svc.training.list_jobs(study.project, None, 500, token)
            for job in page.items:
                if job.name == name and job.created_at >= t.created_at:
                    return job
            if not page.next_page_token or (page.items and
                                            page.items[-1].created_at < t.created_at):
                return None
            token = page.next_page_token


def _otrial(ostudy: optuna.Study, t: Trial) -> optuna.Trial:
    return _optuna.trial(ostudy, int(t.optuna_trial_id or 0))


def _max_steps(study: Study) -> int | None:
    """The most steps a trial runs: its `epochs` (searched, fixed or the trainer's default)."""
    spec = study.spec
    if "epochs" in spec.search_space and spec.search_space["epochs"].high is not None:
        return int(spec.search_space["epochs"].high)
    if "epochs" in spec.hyperparameters:
        return int(spec.hyperparameters["epochs"])
    if spec.trainer:
        from modelyard.training.trainers import BUILTINS

        b = BUILTINS.get(spec.trainer)
        default: Any = b.params().model_dump().get("epochs") if b else None
        return int(default) if default else None
    return None
