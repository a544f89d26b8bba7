"""Alert rules: checking a rule's spec and evaluating it once over its window."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from modelyard.core.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.core.ids import check_name
from modelyard.metrics.models import AlertRule, AlertRuleSpec

if TYPE_CHECKING:
    from modelyard.metrics.service import MetricsService

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
DRIFT_METRICS = ("input_psi", "prediction_psi")


def check_spec(spec: AlertRuleSpec) -> AlertRuleSpec:
    check_name(spec.name, "alert rule name")
    if spec.metric in DRIFT_METRICS and not spec.deployment:
        raise InvalidArgument(f"a {spec.metric} rule needs a deployment", {"field": "deployment"})
    if spec.action == "rollback" and not spec.deployment:
        raise InvalidArgument("a rule with action rollback needs the deployment it rolls back",
                              {"field": "deployment"})
    if spec.metric == "input_psi" and spec.reference is not None and not (
            isinstance(spec.reference, list) and len(spec.reference) >= 10):
        raise InvalidArgument("an input_psi rule's `reference` is at least 10 per-row input "
                              "means of the reference data (or leave it out: the deployed "
                              "version's training data)", {"field": "reference"})
    if spec.metric == "prediction_psi" and not (isinstance(spec.reference, dict)
                                                and spec.reference):
        raise InvalidArgument("a prediction_psi rule needs `reference`: label -> share",
                              {"field": "reference"})
    return spec


def evaluate(metrics: MetricsService, rule: AlertRule, now: datetime) -> \
        tuple[str, float | None, str]:
    """(state, value, message) of `rule` over `[now - window_s, now)`."""
    spec = rule.spec
    start = now - timedelta(seconds=spec.window_s)
    value: float | None
    try:
        if spec.metric == "input_psi":
            assert not isinstance(spec.reference, dict) and spec.deployment
            value = metrics.input_drift(rule.project, spec.deployment, spec.reference, start,
                                        now).psi
        elif spec.metric == "prediction_psi":
            assert isinstance(spec.reference, dict) and spec.deployment
            value = metrics.drift(rule.project, spec.deployment, spec.reference, start, now).psi
        else:
            res = metrics.query(rule.project, spec.metric, start, now, step_s=spec.window_s,
                                deployment=spec.deployment)
            value = res.series[0].points[0].value if res.series else None
    except InvalidArgument:  # e.g. nothing served in the window yet
        value = None
    except (NotFound, FailedPrecondition) as e:  # e.g. the deployment or its training data gone
        return "no_data", None, f"no data for {spec.metric}: {e.message}"
    where = f" of {spec.deployment}" if spec.deployment else ""
    if value is None:
        return "no_data", None, f"no data for {spec.metric}{where} in the last {spec.window_s:g}s"
    firing = OPS[spec.op](value, spec.threshold)
    verdict = "breaks" if firing else "keeps"
    message = (f"{spec.metric}{where} is {value:.4g}: {verdict} the rule {spec.op} "
               f"{spec.threshold:g} over the last {spec.window_s:g}s")
    return ("firing" if firing else "ok"), value, message
