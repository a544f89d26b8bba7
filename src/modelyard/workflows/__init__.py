"""The workflow manager: durable DAG pipelines, triggers (cron, events), caching, resume."""

from __future__ import annotations

from modelyard.workflows.context import StepContext
from modelyard.workflows.dsl import Pipeline, StepSpec, step

__all__ = ["Pipeline", "StepContext", "StepSpec", "step"]
