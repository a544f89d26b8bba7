"""The model metrics store: prediction events, feedback, queries and drift."""

from __future__ import annotations

from modelyard.metrics._limits import MAX_VERSION
from modelyard.metrics.models import Feedback, PredictionEvent, QueryResult
from modelyard.metrics.service import MetricsService

__all__ = ["MAX_VERSION", "Feedback", "MetricsService", "PredictionEvent", "QueryResult"]
