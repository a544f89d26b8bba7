"""Submitting, listing, cancelling jobs through the API (scheduler loop off: nothing runs)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.sdk.client import Client
from tests.conftest import Team, bearer


@pytest.fixture
def client(api: TestClient, team: Team) -> Client:
    """The superuser's SDK over the in-process app; projects alpha and beta exist."""
    return Client(token=team.admin, project="alpha", http=api)


@pytest.fixture
def snap(client: Client) -> dict[str, Any]:
    client.datasets.import_builtin("digits", "sklearn:digits")
    return client.datasets.snapshot("digits")


def _queued(client: Client) -> list[dict[str, Any]]:
    return client.training.list(state="queued")["items"]  # type: ignore[no-any-return]


def test_trainers_list_their_hyperparameter_schemas(client: Client) -> None:
    trainers = {t["name"]: t for t in client.training.trainers()}
    assert set(trainers) >= {"digits-cnn", "intent-classifier"}
    digits = trainers["digits-cnn"]
    assert digits["task"] == "image_classification"
    assert {"lr", "epochs", "batch_size", "channels"} <= set(digits["hyperparameters"]["properties"])
    assert digits["defaults"]["epochs"] >= 1


def test_submit_queues_a_job_with_defaults_filled_in(client: Client, snap: dict[str, Any]) -> None:
    job = client.training.submit("digits-cnn", snap["id"], hyperparameters={"epochs": 3})
    assert job["state"] == "queued"
    assert job["queue_position"] == 0
    assert job["hyperparameters"]["epochs"] == 3
    assert job["hyperparameters"]["lr"] > 0  # default
    assert len(job["code_hash"]) == 64
    assert client.training.get(job["id"])["state"] == "queued"


@pytest.mark.parametrize(("spec", "field"), [
    ({"trainer": "no-such-trainer"}, "trainer"),
    ({"hyperparameters": {"lr": 5.0}}, "hyperparameters.lr"),
    ({"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs"),
    ({"hyperparameters": {"nonsense": 1}}, "hyperparameters.nonsense"),
    ({"resources": {"cpu": 1, "workers": 1000}}, "resources.workers"),
    ({"resources": {"cpu": 4096}}, "resources.cpu"),
    ({"resources": {"cpu": 1, "workers": 64}}, "resources.cpu"),
    ({"resources": {"gpu": 64}}, "resources.gpu"),
])
def test_bad_specs_are_refused_and_nothing_is_queued(
        api: TestClient, team: Team, client: Client, snap: dict[str, Any],
        spec: dict[str, Any], field: str) -> None:
    body = {"trainer": "digits-cnn", "dataset_snapshot": snap["id"], **spec}
    r = api.post("/api/v1/projects/alpha/jobs", json=body, headers=bearer(team.editor))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert field in (err["details"].get("field", "") + err["message"] + str(err["details"]))
    assert _queued(client) == []


def test_unknown_snapshot_is_refused(client: Client) -> None:
    with pytest.raises(NotFound):
        client.training.submit("digits-cnn", "snap_does_not_exist")
    assert _queued(client) == []


def test_snapshot_that_is_not_ready_is_refused(api: TestClient, client: Client,
                                               snap: dict[str, Any]) -> None:
    api.app.state.platform.datasets.store.update_snapshot(snap["id"], status="pending")
    with pytest.raises(FailedPrecondition, match="not ready"):
        client.training.submit("digits-cnn", snap["id"])
    assert _queued(client) == []


def test_snapshot_of_the_wrong_task_is_refused(client: Client, snap: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="text_intent"):
        client.training.submit("intent-classifier", snap["id"])
    assert _queued(client) == []


def test_queue_position_follows_priority_then_arrival(client: Client,
                                                     snap: dict[str, Any]) -> None:
    first = client.training.submit("digits-cnn", snap["id"])
    second = client.training.submit("digits-cnn", snap["id"])
    urgent = client.training.submit("digits-cnn", snap["id"], priority=10)
    assert client.training.get(urgent["id"])["queue_position"] == 0
    assert client.training.get(first["id"])["queue_position"] == 1
    assert client.training.get(second["id"])["queue_position"] == 2


def test_list_filters_by_state_and_paginates(client: Client, snap: dict[str, Any]) -> None:
    ids = [client.training.submit("digits-cnn", snap["id"])["id"] for _ in range(3)]
    client.training.cancel(ids[0])
    page = client.training.list(limit=2)
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    rest = client.training.list(limit=2, page_token=page["next_page_token"])
    assert [j["id"] for j in rest["items"]] == [ids[0]]
    assert rest["next_page_token"] is None
    assert {j["id"] for j in _queued(client)} == set(ids[1:])
    assert [j["id"] for j in client.training.list(state="cancelled")["items"]] == [ids[0]]


def test_cancel_a_queued_job_and_cancel_again_conflicts(client: Client,
                                                        snap: dict[str, Any]) -> None:
    job = client.training.submit("digits-cnn", snap["id"])
    assert client.training.cancel(job["id"])["state"] == "cancelled"
    with pytest.raises(FailedPrecondition):
        client.training.cancel(job["id"])


def test_viewers_read_but_cannot_submit_or_cancel(api: TestClient, team: Team,
                                                  snap: dict[str, Any]) -> None:
    jobs = "/api/v1/projects/alpha/jobs"
    body = {"trainer": "digits-cnn", "dataset_snapshot": snap["id"]}
    assert api.post(jobs, json=body, headers=bearer(team.viewer)).status_code == 403
    made = api.post(jobs, json=body, headers=bearer(team.editor))
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    assert api.get(f"{jobs}/{job_id}", headers=bearer(team.viewer)).status_code == 200
    assert api.post(f"{jobs}/{job_id}/cancel", headers=bearer(team.viewer)).status_code == 403
    assert api.get(f"{jobs}/{job_id}", headers=bearer(team.outsider)).status_code == 404


def test_quota_is_set_by_admins_only(api: TestClient, team: Team) -> None:
    quota = "/api/v1/projects/alpha/training/quota"
    assert api.put(quota, json={"max_cpu": 1}, headers=bearer(team.editor)).status_code == 403
    r = api.put(quota, json={"max_cpu": 1, "max_jobs": 2}, headers=bearer(team.owner))
    assert r.status_code == 200, r.text
    assert api.get(quota, headers=bearer(team.viewer)).json()["max_jobs"] == 2


def test_code_packages_must_be_archives(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="zip"):
        client.training.upload_code(b"print('not an archive')")
    with pytest.raises(InvalidArgument, match="upload"):
        client.training.submit(code={"digest": "0" * 64, "entrypoint": "train.py"})
    assert _queued(client) == []


def test_logs_of_a_job_that_has_not_started_are_empty(client: Client,
                                                      snap: dict[str, Any]) -> None:
    job = client.training.submit("digits-cnn", snap["id"])
    assert "".join(client.training.logs(job["id"])) == ""


def test_a_code_package_belongs_to_the_project_it_was_uploaded_to(
        api: TestClient, team: Team, client: Client) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", "print('hi')\n")
    digest = client.training.upload_code(buf.getvalue())["digest"]
    # What comes back is the package in its canonical form (a tar): the same files.
    with tarfile.open(fileobj=io.BytesIO(client.training.download_code(digest))) as t:
        assert t.getnames() == ["train.py"]
        assert t.extractfile("train.py").read() == b"print('hi')\n"  # type: ignore[union-attr]
    beta = "/api/v1/projects/beta"
    assert api.get(f"{beta}/training/code/{digest}",
                   headers=bearer(team.outsider)).status_code == 404
    r = api.post(f"{beta}/jobs", json={"code": {"digest": digest}}, headers=bearer(team.outsider))
    assert r.status_code == 400 and "upload" in r.json()["error"]["message"]


def test_list_shows_each_queued_jobs_place_by_fair_share_and_why_it_waits(
        api: TestClient, team: Team, client: Client, snap: dict[str, Any]) -> None:
    # Issue 22 item 13: the place counts fair share as admission does (beta holds nothing,
    # so its job comes before alpha's second), and a job held back says why.
    beta = Client(token=team.admin, project="beta", http=api)
    beta.datasets.import_builtin("digits", "sklearn:digits")
    beta_snap = beta.datasets.snapshot("digits")
    client.training.set_quota(max_jobs=1)
    a1 = client.training.submit("digits-cnn", snap["id"])
    a2 = client.training.submit("digits-cnn", snap["id"])
    b1 = beta.training.submit("digits-cnn", beta_snap["id"])
    listed = {j["id"]: j for j in _queued(client)}
    assert (listed[a1["id"]]["queue_position"], listed[a2["id"]]["queue_position"]) == (0, 2)
    assert listed[a2["id"]]["queue_reason"] == "project quota: max_jobs 1 reached"
    assert beta.training.get(b1["id"])["queue_position"] == 1
    assert client.training.get(a2["id"])["queue_reason"] == "project quota: max_jobs 1 reached"
