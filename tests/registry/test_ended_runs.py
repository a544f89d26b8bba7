"""An ended run is a record: it takes no more metrics and keeps the status it ended with."""

from __future__ import annotations

import pytest

from modelyard.core.errors import FailedPrecondition
from modelyard.sdk.client import Client


def test_an_ended_run_takes_no_metrics_and_keeps_its_status(client: Client) -> None:
    run = client.registry.create_run("exp", params={"lr": 0.1})
    client.registry.log_metrics(run["id"], [("loss", 0, 1.0, None)])
    done = client.registry.finish_run(run["id"], "finished")
    with pytest.raises(FailedPrecondition) as e:
        client.registry.log_metrics(run["id"], [("loss", 1, 0.5, None)])
    assert "finished" in e.value.message
    with pytest.raises(FailedPrecondition):
        client.registry.finish_run(run["id"], "failed")
    again = client.registry.finish_run(run["id"], "finished")  # the same end again: a no-op
    assert (again["status"], again["ended_at"]) == ("finished", done["ended_at"])
    assert [p["value"] for p in client.registry.get_metric_series(run["id"], "loss")] == [1.0]
