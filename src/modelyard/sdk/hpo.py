"""Client calls of the HPO component."""

from __future__ import annotations

import builtins
from typing import Any

from modelyard.sdk._http import Transport, poll_until

TERMINAL = ("completed", "stopped")


class HpoAPI:
    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(self, name: str, *, search_space: dict[str, Any], objective: dict[str, Any] | str,
               n_trials: int, trainer: str | None = None, dataset_snapshot: str | None = None,
               direction: str = "maximize", sampler: dict[str, Any] | str = "tpe",
               pruner: dict[str, Any] | str = "asha", max_parallel: int = 2,
               hyperparameters: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
        """Creates a study; raises InvalidArgument (with the reason) for a bad spec.

        `objective` is a metric name (with `direction`) or {"metric", "direction"};
        `sampler`/`pruner` a kind or a dict of options; `more` passes other spec fields
        (code, resources, priority, timeout_s, experiment, best_alias).
        """
        body: dict[str, Any] = {
            "name": name, "trainer": trainer, "dataset_snapshot": dataset_snapshot,
            "search_space": search_space,
            "objective": ({"metric": objective, "direction": direction}
                          if isinstance(objective, str) else objective),
            "sampler": {"kind": sampler} if isinstance(sampler, str) else sampler,
            "pruner": {"kind": pruner} if isinstance(pruner, str) else pruner,
            "n_trials": n_trials, "max_parallel": max_parallel,
            "hyperparameters": hyperparameters or {}, **more,
        }
        return self._t.post(self._t.p("/hpo/studies"), json=body)  # type: ignore[no-any-return]

    def create_from_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Creates a study from a whole spec (the body of POST .../hpo/studies)."""
        return self._t.post(self._t.p("/hpo/studies"), json=spec)  # type: ignore[no-any-return]

    def get(self, study: str) -> dict[str, Any]:
        """The study (id or name) with trial counts and `best`, the best trial so far."""
        return self._t.get(self._t.p(f"/hpo/studies/{study}"))  # type: ignore[no-any-return]

    def list(self, state: str | None = None) -> builtins.list[dict[str, Any]]:
        params = {"state": state} if state else None
        return self._t.get(self._t.p("/hpo/studies"), params=params)  # type: ignore[no-any-return]

    def trials(self, study: str) -> builtins.list[dict[str, Any]]:
        """Every trial's params, value and latest metrics, by trial number."""
        return self._t.get(self._t.p(f"/hpo/studies/{study}/trials"))  # type: ignore[no-any-return]

    def stop(self, study: str) -> dict[str, Any]:
        return self._t.post(self._t.p(f"/hpo/studies/{study}/stop"))  # type: ignore[no-any-return]

    def should_prune(self, job_id: str) -> bool:
        got = self._t.get(self._t.p(f"/hpo/trials/{job_id}/should-prune"))
        return bool(got["prune"])

    def wait(self, study: str, timeout: float = 600.0, poll_s: float = 1.0) -> dict[str, Any]:
        """Polls until the study ends; raises Unavailable (with its state) on timeout."""
        return poll_until(lambda: self.get(study), TERMINAL, timeout, poll_s, f"study {study}",
                          lambda got: {"study": study, "counts": got.get("counts")})
