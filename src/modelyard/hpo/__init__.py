"""modelyard.hpo: studies whose trials are training jobs, searched and pruned by Optuna."""

from __future__ import annotations

from modelyard.hpo.models import (
    ParamSpec,
    PrunerSpec,
    SamplerSpec,
    Study,
    StudySpec,
    StudyState,
    Trial,
    TrialState,
)

__all__ = ["ParamSpec", "PrunerSpec", "SamplerSpec", "Study", "StudySpec", "StudyState", "Trial",
           "TrialState"]
