"""Nothing Ray holds about a job carries a secret: a real local Ray cluster runs jobs of a server
whose blobs live in S3 (moto), and everything Ray keeps about them (the Jobs API's job info:
entrypoint, runtime_env, metadata; the dashboard's job routes over HTTP) is searched for the S3
keys and for API tokens. The jobs still read their dataset from S3 and report to the server:
their credentials came through the one-time ticket exchange; the ticket is worthless after."""

from __future__ import annotations

import io
import json
import re
import secrets
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.core.settings import BlobSettings, Settings, TrainingSettings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.training._live import admin_client, digits_snapshot
from tests.training.test_ray_executor import ray_cluster, ray_job

pytest.importorskip("ray.job_submission")
pytest.importorskip("boto3")
pytestmark = pytest.mark.integration

__all__ = ["ray_cluster"]  # the module-scoped cluster fixture, shared with the executor tests

ACCESS_KEY = "AKIAMODELYARD" + secrets.token_hex(4).upper()
SECRET_KEY = "modelyard-s3-secret-" + secrets.token_hex(16)
TOKEN_SHAPE = re.compile(r"myd_[A-Za-z0-9_\-]{16,}")

READ_S3 = """
import os
from modelyard import runtime

ctx = runtime.context()
rows = len(runtime.dataset("train"))  # Lance on S3, with the exchanged storage options
print(f"rank {ctx.rank}/{ctx.world_size} read {rows} rows", flush=True)
print("TICKET=" + os.environ["MODELYARD_TICKET"], flush=True)
runtime.log_metrics(0, rows=rows)
runtime.flush_metrics()
"""


@pytest.fixture(scope="module")
def server(ray_cluster: str, s3_endpoint: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    import boto3

    bucket = f"ray-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=bucket)
    settings = Settings(
        home=tmp_path_factory.mktemp("ray-secrets") / "home", background=True,
        blobs=BlobSettings(backend="s3", s3_bucket=bucket, s3_prefix="root",
                           s3_endpoint_url=s3_endpoint, s3_access_key_id=ACCESS_KEY,
                           s3_secret_access_key=SECRET_KEY),
        training=TrainingSettings(executor="ray", ray_address=ray_cluster, poll_interval_s=0.5))
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Settings) -> Iterator[Client]:
    yield from admin_client(server)


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("read_s3.py", text)
    return buf.getvalue()


def _everything_ray_holds(address: str, submission_id: str) -> str:
    """The job as the Ray Jobs client and the dashboard's HTTP routes show it to anyone."""
    from ray.job_submission import JobSubmissionClient

    info = JobSubmissionClient(address).get_job_info(submission_id)
    shown = [json.dumps(info.dict() if hasattr(info, "dict") else vars(info), default=str)]
    for path in ("/api/jobs/", f"/api/jobs/{submission_id}"):
        r = httpx.get(address + path, timeout=30)
        assert r.status_code == 200, (path, r.text[:300])
        shown.append(r.text)
    return "\n".join(shown)


def test_ray_holds_no_s3_key_and_no_token_and_the_jobs_still_read_s3(
        ray_cluster: str, server: Settings, client: Client) -> None:
    snap = digits_snapshot(client)
    assert snap["uri"].startswith("s3://")
    code = client.training.upload_code(_zip(READ_S3))
    jobs = [client.training.submit(code={"digest": code["digest"], "entrypoint": "read_s3.py"},
                                   dataset_snapshot=snap["id"],
                                   resources={"cpu": 0.5, "workers": w, "memory_mb": 256})
            for w in (1, 2)]  # one Ray job; and Ray Train's two workers, one exchange each
    for job in jobs:
        done = client.training.wait(job["id"], timeout=180)
        logs = "".join(client.training.logs(job["id"]))
        assert done["state"] == "succeeded", logs
        workers = job["resources"]["workers"]
        assert logs.count(" read ") >= workers and f"rank 0/{workers} read" in logs, logs
        assert done["progress"].get("rows", 0) > 500, (done["progress"], logs)  # a shard each

        held = _everything_ray_holds(ray_cluster, ray_job(ray_cluster, job["id"]).submission_id)
        assert job["id"] in held and "MODELYARD_TICKET" in held  # we did read the job's record
        assert SECRET_KEY not in held
        assert ACCESS_KEY not in held
        assert not TOKEN_SHAPE.search(held), TOKEN_SHAPE.search(held)

        # What a dashboard reader does get, the ticket, is worth nothing now.
        ticket = re.search(r"TICKET=(myt_\S+)", logs)
        assert ticket, logs
        late = httpx.post(f"{server.resolved_public_url}/api/v1/projects/alpha/jobs/"
                          f"{job['id']}/credentials",
                          headers={"Authorization": f"Bearer {ticket.group(1)}"})
        assert late.status_code == 401


@pytest.mark.parametrize("env", [{"MODELYARD_TOKEN": "myd_abc"},
                                 {"MODELYARD_STORAGE_OPTIONS": "{}"},
                                 {"AWS_SECRET_ACCESS_KEY": "x"},
                                 {"SOMETHING": "myd_" + "a" * 40}])
def test_the_ray_executor_refuses_to_ship_a_secret(tmp_path: Path, env: dict[str, str]) -> None:
    from modelyard.core.errors import InvalidArgument
    from modelyard.training.executors import Launch, open_executor

    settings = Settings(home=tmp_path / "home", training=TrainingSettings(
        executor="ray", ray_address="http://127.0.0.1:9"))  # never reached: refused before
    with pytest.raises(InvalidArgument, match="launch ticket"):
        open_executor(settings).submit(Launch(job_id="job_x", workers=1, env=env,
                                              log_path=tmp_path / "job.log"))
