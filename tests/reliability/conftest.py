"""The reliability suite's summary: tests record what they tried; the session end writes it.

Each test adds its figures to `summary` (a session-wide dict of sections). When the session
ends and at least one reliability test recorded something, `bench/results/reliability.json` is
written in the benchmark format, merged key by key over an earlier run's figures (so
`-m "not integration"` keeps the crash figures of the last full run). A failed session writes
nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

_SECTIONS: dict[str, dict[str, Any]] = {}


class Summary:
    """What one test tried and what held, by section (`fuzz`, `crash`, `overload`, `hostile`)."""

    def add(self, section: str, **figures: Any) -> None:
        into = _SECTIONS.setdefault(section, {})
        for key, value in figures.items():
            if isinstance(value, int | float) and isinstance(into.get(key), int | float):
                into[key] += value
            elif isinstance(value, list) and isinstance(into.get(key), list):
                into[key] = sorted(set(into[key]) | set(value))
            else:
                into[key] = value


@pytest.fixture(scope="session")
def summary() -> Summary:
    return Summary()


def _headline(sections: dict[str, dict[str, Any]]) -> int:
    """Server errors seen anywhere plus acknowledged items lost: the one number that must be 0."""
    return int(sum(s.get("server_errors", 0) + s.get("lost", 0) for s in sections.values()))


# Crash points and overload tested by other components' suites, named in the summary too.
COVERED_ELSEWHERE = {
    "tests/datasets/test_crash.py": "dataset commit: writer killed between the Lance commit "
                                    "and the metadata row; previous version intact",
    "tests/training/test_restart.py": "server stopped while a job runs: job adopted, or retried "
                                      "from its checkpoint when lost with the server",
    "tests/hpo/test_study_e2e.py, tests/hpo/test_controller.py": "HPO study: server gone "
                                   "mid-study finishes with exactly the budget; crash between "
                                   "a job submit / an Optuna ask and its record is reconciled",
    "tests/workflows/test_resume.py": "bare pipeline engine process killed -9 mid-step (the "
                                      "server kill is in this suite): resumed, finished "
                                      "steps never repeated",
    "tests/serving/test_release.py": "serving overload: full batch queue answers 429 with "
                                     "Retry-After; every admitted request right",
    "tests/server/test_admission.py": "API admission limit: 429 + Retry-After when full, "
                                      "probes/metrics/predictions never held back, admitted "
                                      "again once free; the SDK waits a 429 out, bounded",
    "tests/server/test_authz_matrix.py": "every route x role x own/other project, generated from "
                                         "the route table",
    "tests/server/test_errors.py": "every route with nonsense bodies/params: 4xx JSON, never 500; "
                                   "oversized JSON bodies 413",
}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _SECTIONS:
        return
    if exitstatus != 0:  # only a passing run's figures are published
        print("reliability: the session failed; bench/results/reliability.json left as it was")
        return
    from bench._harness import RESULTS, write_result

    path = RESULTS / "reliability.json"
    sections: dict[str, dict[str, Any]] = {}
    if path.exists():
        try:
            sections = dict(json.loads(path.read_text()).get("figures", {}).get("sections", {}))
        except (ValueError, AttributeError):
            sections = {}
    for name, figures in _SECTIONS.items():  # this session's figures replace, key by key
        sections[name] = {**sections.get(name, {}), **figures}
    write_result(
        name="reliability",
        goal="no 5xx on any endpoint under fuzzing, overload or hostile input; nothing "
             "acknowledged lost across kill -9",
        metric="server_errors_plus_lost_items",
        value=_headline(sections),
        target=0,
        higher_is_better=False,
        figures={"sections": sections, "covered_elsewhere": COVERED_ELSEWHERE},
        peers={},
        script=__file__,
    )
