"""A server that died between starting a job's process and recording it adopts the process."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from modelyard.core.ids import utcnow
from modelyard.sdk.client import Client
from modelyard.training.executors import Launch
from modelyard.training.models import JobState
from tests.training._live import job_pids

REPO = Path(__file__).resolve().parents[2]


def _package() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", "pass\n")
    return buf.getvalue()


def test_a_job_started_but_not_recorded_is_adopted_not_started_twice(
        api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.training
    code = {"digest": client.training.upload_code(_package())["digest"]}
    job = client.training.submit(code=code)
    # What the scheduler did before the "crash": admitted the job and started its process.
    svc.store.update(job["id"], [JobState.queued], state=JobState.scheduled,
                     scheduled_at=utcnow())
    svc.executor.submit(Launch(
        job_id=job["id"], workers=1, log_path=svc.log_path(job["id"]),
        env={"MODELYARD_ENTRYPOINT": "tests.training._sleepy:main", "PYTHONPATH": str(REPO),
             "MODELYARD_JOB_ID": job["id"], "SLEEPY_PIDS": str(svc.log_path("pids"))}))
    svc.loop.reconcile()
    adopted = client.training.get(job["id"])
    assert adopted["state"] == "running"
    svc.tick()  # the adopted job holds its resources: nothing starts a second copy
    assert client.training.get(job["id"])["state"] == "running"
    client.training.cancel(job["id"])
    deadline = time.monotonic() + 15
    while job_pids(job["id"]):
        assert time.monotonic() < deadline, "the adopted process survived the cancel"
        time.sleep(0.05)


def test_a_job_admitted_but_never_started_goes_back_to_the_queue(
        api: TestClient, client: Client) -> None:
    svc = api.app.state.platform.training
    code = {"digest": client.training.upload_code(_package())["digest"]}
    job = client.training.submit(code=code)
    svc.store.update(job["id"], [JobState.queued], state=JobState.scheduled,
                     scheduled_at=utcnow())
    svc.loop.reconcile()
    again = client.training.get(job["id"])
    assert (again["state"], again["queue_position"]) == ("queued", 0)
