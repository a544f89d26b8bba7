"""modelyard.training: the job queue, the scheduler and the executors."""

from __future__ import annotations

from modelyard.training.models import Job, JobSpec, JobState, Resources, TrainerInfo

__all__ = ["Job", "JobSpec", "JobState", "Resources", "TrainerInfo"]
