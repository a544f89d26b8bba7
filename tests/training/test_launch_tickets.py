"""A job's environment carries a one-time launch ticket, never a token or storage keys; the
ticket is exchanged for them once per worker of its own attempt, before it expires, and is void
once the job ends, taking the tokens it gave out with it.

The API tests launch jobs through the real scheduler loop into an executor that only records
what it was asked to start (the environment is what Ray's dashboard would show); the test then
plays the job's workers and the attacker who read the ticket. The last test runs a real job on
a live server: the ticket is used up by the job itself, and the job works with what it got.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from modelyard.core.errors import Unauthenticated
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from modelyard.training import _credentials
from modelyard.training.executors import Executor, Launch, Status
from tests._servers.live import live_server
from tests.conftest import Team, bearer
from tests.training._live import admin_client


class Recorder(Executor):
    """Starts nothing: remembers each launch; its jobs run until cancelled."""

    def __init__(self) -> None:
        self.launches: dict[str, Launch] = {}
        self.cancelled: set[str] = set()

    def submit(self, launch: Launch) -> str:
        self.launches[launch.job_id] = launch
        return json.dumps({"job": launch.job_id})

    def poll(self, handle: str) -> Status:
        return Status(running=json.loads(handle)["job"] not in self.cancelled)

    def cancel(self, handle: str) -> None:
        self.cancelled.add(json.loads(handle)["job"])


@pytest.fixture
def client(api: TestClient, team: Team) -> Client:
    return Client(token=team.admin, project="alpha", http=api)


@pytest.fixture
def recorder(api: TestClient) -> Recorder:
    rec = Recorder()
    api.app.state.platform.training.executor = rec  # type: ignore[attr-defined]
    return rec


def _launch(api: TestClient, client: Client, recorder: Recorder,
            workers: int = 1) -> tuple[dict[str, Any], str]:
    """A job launched by the scheduler, and the ticket in its environment."""
    code = client.training.upload_code(_zip("print('hello')\n"))
    job = client.training.submit(code={"digest": code["digest"], "entrypoint": "job.py"},
                                 resources={"cpu": 0.5, "workers": workers, "memory_mb": 256})
    api.app.state.platform.training.tick()  # type: ignore[attr-defined]
    assert client.training.get(job["id"])["state"] == "running"
    return job, recorder.launches[job["id"]].env["MODELYARD_TICKET"]


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("job.py", text)
    return buf.getvalue()


def _redeem(api: TestClient, job_id: str, ticket: str, project: str = "alpha") -> Any:
    return api.post(f"/api/v1/projects/{project}/jobs/{job_id}/credentials",
                    headers=bearer(ticket))


def test_a_launch_environment_holds_a_ticket_and_no_secret(
        api: TestClient, client: Client, recorder: Recorder) -> None:
    job, ticket = _launch(api, client, recorder)
    env = recorder.launches[job["id"]].env
    assert ticket.startswith("myt_")
    assert "MODELYARD_TOKEN" not in env and "MODELYARD_STORAGE_OPTIONS" not in env
    assert not [k for k, v in env.items() if "myd_" in v], env.keys()


def test_a_ticket_is_worth_one_exchange_per_worker(api: TestClient, client: Client,
                                                   recorder: Recorder) -> None:
    job, ticket = _launch(api, client, recorder, workers=2)
    tokens = []
    for _rank in range(2):
        got = _redeem(api, job["id"], ticket)
        assert got.status_code == 200, got.text
        tokens.append(got.json()["token"])
    assert len(set(tokens)) == 2  # each rank its own token
    for token in tokens:  # the job's: usable in its project, as an editor, nowhere else
        assert api.get(f"/api/v1/projects/alpha/jobs/{job['id']}",
                       headers=bearer(token)).status_code == 200
        assert api.get("/api/v1/projects/beta", headers=bearer(token)).status_code == 404
        assert api.put("/api/v1/projects/alpha/members", json={"user": "vic", "role": "admin"},
                       headers=bearer(token)).status_code == 403
    # Whoever read the ticket too comes too late.
    late = _redeem(api, job["id"], ticket)
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "unauthenticated"


def test_a_ticket_works_for_its_own_job_only(api: TestClient, client: Client, team: Team,
                                             recorder: Recorder) -> None:
    job_a, ticket_a = _launch(api, client, recorder)
    job_b, ticket_b = _launch(api, client, recorder)
    answers = [_redeem(api, job_b["id"], ticket_a),  # another job's ticket
               _redeem(api, job_a["id"], ticket_a, project="beta"),  # the wrong project
               _redeem(api, "job_nosuchjob", ticket_a),
               _redeem(api, job_a["id"], "myt_" + "x" * 43),  # a made-up ticket
               _redeem(api, job_a["id"], team.admin),  # an API token is not a ticket
               api.post(f"/api/v1/projects/alpha/jobs/{job_a['id']}/credentials")]
    assert [a.status_code for a in answers] == [401] * 6
    # The refusals read the same: none tells which check failed, nor whether a job exists.
    assert len({a.content for a in answers[:5]}) == 1
    # ... and none used anything up.
    assert _redeem(api, job_a["id"], ticket_a).status_code == 200
    assert _redeem(api, job_b["id"], ticket_b).status_code == 200


def test_an_expired_ticket_is_refused(api: TestClient, client: Client, recorder: Recorder,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_credentials, "TICKET_TTL_S", 0)  # expired as soon as it is issued
    job, ticket = _launch(api, client, recorder)
    assert _redeem(api, job["id"], ticket).status_code == 401


def test_a_ticket_is_void_once_its_job_ends(api: TestClient, client: Client,
                                            recorder: Recorder) -> None:
    job, ticket = _launch(api, client, recorder, workers=2)
    first = _redeem(api, job["id"], ticket)
    assert first.status_code == 200, first.text
    token = first.json()["token"]
    client.training.cancel(job["id"])
    assert _redeem(api, job["id"], ticket).status_code == 401
    # Void, not only refused because the job ended: the ticket itself is gone.
    with pytest.raises(Unauthenticated):
        api.app.state.platform.auth.tickets.redeem(  # type: ignore[attr-defined]
            ticket, subject=_credentials.subject(job["id"]), attempt=0)
    # And the token it gave out stops working at once (the principal cache forgot it).
    assert api.get("/api/v1/whoami", headers=bearer(token)).status_code == 401


def test_a_retried_attempt_gets_a_new_ticket_and_the_old_one_dies(
        api: TestClient, client: Client, recorder: Recorder) -> None:
    code = client.training.upload_code(_zip("print('hello')\n"))
    job = client.training.submit(code={"digest": code["digest"], "entrypoint": "job.py"},
                                 resources={"cpu": 0.5, "memory_mb": 256}, max_retries=1)
    training = api.app.state.platform.training  # type: ignore[attr-defined]
    training.tick()
    old = recorder.launches[job["id"]].env["MODELYARD_TICKET"]
    token = _redeem(api, job["id"], old).json()["token"]
    recorder.launches.pop(job["id"])
    recorder.cancelled.add(job["id"])  # the attempt's process is lost: a retry
    training.tick()
    recorder.cancelled.discard(job["id"])
    training.tick()
    assert client.training.get(job["id"])["attempt"] == 1
    new = recorder.launches[job["id"]].env["MODELYARD_TICKET"]
    assert new != old
    assert api.get("/api/v1/whoami", headers=bearer(token)).status_code == 401
    assert _redeem(api, job["id"], old).status_code == 401
    assert _redeem(api, job["id"], new).status_code == 200


# A real job: what it sees of its own environment, the exchange its worker already made (the
# code package was fetched with it), then its real work with the token it got.
REPORT_ENV = """
import os
from modelyard import runtime

leaked = sorted(k for k, v in os.environ.items()
                if k in ("MODELYARD_TOKEN", "MODELYARD_STORAGE_OPTIONS") or "myd_" in v)
print("LEAKED=" + ",".join(leaked), flush=True)
print("TICKET=" + os.environ["MODELYARD_TICKET"], flush=True)
runtime.log_metrics(0, score=1.0)
runtime.flush_metrics()
print("reported with the exchanged token", flush=True)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = Settings(home=tmp_path_factory.mktemp("tickets") / "home", background=True)
    settings.training.capacity_cpus = 2
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def live_client(live: Settings) -> Iterator[Client]:
    yield from admin_client(live)


@pytest.mark.integration
def test_a_real_job_uses_its_ticket_up_and_works_without_a_token_in_its_environment(
        live: Settings, live_client: Client) -> None:
    code = live_client.training.upload_code(_zip(REPORT_ENV))
    job = live_client.training.submit(code={"digest": code["digest"], "entrypoint": "job.py"},
                                      resources={"cpu": 0.5, "memory_mb": 256})
    done = live_client.training.wait(job["id"], timeout=60)
    logs = "".join(live_client.training.logs(job["id"]))
    assert done["state"] == "succeeded", logs
    assert "LEAKED=\n" in logs
    assert "reported with the exchanged token" in logs
    assert done["progress"] == {"score": 1.0, "step": 0}
    found = re.search(r"TICKET=(myt_\S+)", logs)
    assert found, logs
    late = httpx.post(f"{live.resolved_public_url}/api/v1/projects/alpha/jobs/{job['id']}"
                      "/credentials", headers=bearer(found.group(1)))
    assert late.status_code == 401
