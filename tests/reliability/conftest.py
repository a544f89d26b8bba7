"""The reliability suite's summary: tests record what they tried; the session end writes it.

Each test adds its figures to `summary` (a session-wide dict of sections). When the session
ends and at least one reliability test recorded something, `bench/results/reliability.json` is
written in the benchmark format, merged over the sections of an earlier run that this session
did not run (so `-m "not integration"` keeps the crash figures of the last full run).
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _SECTIONS:
        return
    from bench._harness import RESULTS, write_result

    path = RESULTS / "reliability.json"
    sections: dict[str, dict[str, Any]] = {}
    if path.exists():
        try:
            sections = dict(json.loads(path.read_text()).get("figures", {}).get("sections", {}))
        except (ValueError, AttributeError):
            sections = {}
    sections.update(_SECTIONS)
    write_result(
        name="reliability",
        goal="no 5xx on any endpoint under fuzzing, overload or hostile input; nothing "
             "acknowledged lost across kill -9",
        metric="server_errors_plus_lost_items",
        value=_headline(sections),
        target=0,
        higher_is_better=False,
        figures={"sections": sections, "pytest_exit_status": int(exitstatus)},
        peers={},
        script=__file__,
    )
