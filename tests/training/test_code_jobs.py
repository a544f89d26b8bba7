"""Jobs that run code a user uploaded: metrics, retries, timeouts, lineage of the code."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.errors import PermissionDenied, Unauthenticated
from modelyard.core.settings import Settings
from modelyard.sdk.client import Client
from tests._servers.live import live_server
from tests.training._live import admin_client, job_pids

pytestmark = pytest.mark.e2e

TRAIN = '''
import os, time
from modelyard import runtime
from modelyard.runtime._context import credentials  # what the ticket was exchanged for

ctx = runtime.context()
print(f"hello from user code, attempt {ctx.attempt}", flush=True)
if ctx.hyperparameters.get("show_token"):  # the job's sandbox has no way out but its log
    print(f"job token: {credentials().token}", flush=True)
if ctx.hyperparameters.get("sleep"):
    time.sleep(ctx.hyperparameters["sleep"])
if ctx.attempt < ctx.hyperparameters.get("fail_attempts", 0):
    raise SystemExit(7)
runtime.log_metrics(0, score=ctx.hyperparameters.get("x", 0) * 2)
runtime.log_metrics(1, score=ctx.hyperparameters.get("x", 0) * 3)
'''


def _package(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():  # a fixed date: the same files, the same bytes
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("code-jobs") / "home"
    settings = Settings(home=home, background=True)
    settings.training.capacity_cpus = 2
    settings.training.capacity_gpus = 2  # counted, not used: the jobs only report what they see
    with live_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: Settings) -> Iterator[Client]:
    yield from admin_client(server)


@pytest.fixture(scope="module")
def code(client: Client) -> dict[str, str]:
    uploaded = client.training.upload_code(_package({"train.py": TRAIN}))
    return {"digest": uploaded["digest"], "entrypoint": "train.py"}


def test_uploaded_code_runs_and_reports_metrics(client: Client, code: dict[str, str]) -> None:
    again = client.training.upload_code(_package({"train.py": TRAIN}))
    assert again["digest"] == code["digest"]  # content-addressed
    job = client.training.submit(code=code, hyperparameters={"x": 2})
    done = client.training.wait(job["id"], timeout=60)
    log = "".join(client.training.logs(job["id"]))
    assert done["state"] == "succeeded", log
    assert "hello from user code, attempt 0" in log
    assert done["progress"] == {"score": 6.0, "step": 1}
    assert done["code_hash"] == code["digest"]


def test_a_jobs_token_works_in_its_project_only_and_dies_with_the_job(
        server: Settings, client: Client, code: dict[str, str]) -> None:
    job = client.training.submit(code=code, hyperparameters={"show_token": True,
                                                             "sleep": 1})
    deadline = time.monotonic() + 30
    while "job token: " not in (log := "".join(client.training.logs(job["id"]))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    token = log.split("job token: ")[1].split()[0]
    with Client(server.resolved_public_url, token=token, project="alpha") as as_job:
        assert as_job.training.get(job["id"])["id"] == job["id"]
        with pytest.raises(PermissionDenied):
            as_job.create_project("elsewhere")
        assert client.training.wait(job["id"], timeout=60)["state"] == "succeeded"
        with pytest.raises(Unauthenticated):
            as_job.training.get(job["id"])


def test_a_failing_job_is_retried_up_to_max_retries(client: Client, code: dict[str, str]) -> None:
    ok = client.training.submit(code=code, hyperparameters={"fail_attempts": 1}, max_retries=1)
    bad = client.training.submit(code=code, hyperparameters={"fail_attempts": 5}, max_retries=1)
    ok_done = client.training.wait(ok["id"], timeout=60)
    bad_done = client.training.wait(bad["id"], timeout=60)
    assert (ok_done["state"], ok_done["attempt"]) == ("succeeded", 1)
    assert (bad_done["state"], bad_done["attempt"], bad_done["exit_code"]) == ("failed", 1, 7)
    assert "exited with code 7" in bad_done["message"]


def _at(job: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(job[field])


def _peak_cpu(jobs: list[dict[str, Any]]) -> float:
    """The most CPU the scheduler ever had handed out at once to these jobs."""
    events = []
    for j in jobs:
        events.append((_at(j, "scheduled_at"), 1, j["resources"]["cpu"]))
        events.append((_at(j, "finished_at"), 0, -j["resources"]["cpu"]))
    held = peak = 0.0
    for _, _, delta in sorted(events):  # at equal times, ends (0) before starts (1)
        held += delta
        peak = max(peak, held)
    return peak


def test_two_cpus_run_one_big_and_three_small_jobs_without_over_committing(
        client: Client, code: dict[str, str]) -> None:
    submitted = [client.training.submit(code=code, hyperparameters={"sleep": 0.5},
                                        resources={"cpu": cpu}) for cpu in (2, 1, 1, 1)]
    done = [client.training.wait(j["id"], timeout=60) for j in submitted]
    assert [j["state"] for j in done] == ["succeeded"] * 4
    assert _peak_cpu(done) <= 2


def test_a_higher_priority_job_starts_first(client: Client, code: dict[str, str]) -> None:
    blocker = client.training.submit(code=code, hyperparameters={"sleep": 1},
                                     resources={"cpu": 2})
    low = client.training.submit(code=code, resources={"cpu": 2}, priority=0)
    high = client.training.submit(code=code, resources={"cpu": 2}, priority=5)
    assert client.training.get(high["id"])["queue_position"] < (
        client.training.get(low["id"])["queue_position"])
    done = {j["id"]: client.training.wait(j["id"], timeout=60) for j in (blocker, low, high)}
    assert all(j["state"] == "succeeded" for j in done.values())
    assert _at(done[high["id"]], "scheduled_at") < _at(done[low["id"]], "scheduled_at")


def test_a_project_over_its_quota_waits(client: Client, code: dict[str, str]) -> None:
    client.training.set_quota(max_jobs=1)
    try:
        first = client.training.submit(code=code, hyperparameters={"sleep": 1})
        second = client.training.submit(code=code)
        time.sleep(0.5)
        assert client.training.get(second["id"])["state"] == "queued"  # a CPU is free, yet
        done = [client.training.wait(j["id"], timeout=60) for j in (first, second)]
    finally:
        client.training.set_quota()
    assert [j["state"] for j in done] == ["succeeded", "succeeded"]
    assert _at(done[1], "scheduled_at") >= _at(done[0], "finished_at")


SEE_GPUS = """
import os, time
from modelyard import runtime

ctx = runtime.context()
print(f"gpus: [{os.environ['CUDA_VISIBLE_DEVICES']}]", flush=True)
time.sleep(ctx.hyperparameters.get("sleep", 0))
"""


def test_each_job_sees_only_the_gpus_it_was_given(client: Client) -> None:
    code = {"digest": client.training.upload_code(_package({"gpus.py": SEE_GPUS}))["digest"],
            "entrypoint": "gpus.py"}
    jobs = [client.training.submit(code=code, hyperparameters={"sleep": 1},
                                   resources={"cpu": 0.5, "gpu": 1}) for _ in range(3)]
    done = [client.training.wait(j["id"], timeout=60) for j in jobs]
    assert [j["state"] for j in done] == ["succeeded"] * 3
    seen = ["".join(client.training.logs(j["id"])).split("gpus: [")[1].split("]")[0]
            for j in done]
    assert seen == [",".join(str(g) for g in j["gpus"]) for j in done]
    assert seen[0] != seen[1] and {seen[0], seen[1]} == {"0", "1"}  # side by side, apart
    # Two GPUs for three one-GPU jobs: the third started once one of the first two ended.
    assert _at(done[2], "scheduled_at") >= min(_at(d, "finished_at") for d in done[:2])


def test_cancel_stops_a_multi_worker_job_and_every_process_it_started(
        client: Client, code: dict[str, str]) -> None:
    job = client.training.submit(code=code, hyperparameters={"sleep": 60},
                                 resources={"cpu": 1, "workers": 2})
    deadline = time.monotonic() + 60
    while "".join(client.training.logs(job["id"])).count("hello from user code") < 2:
        assert time.monotonic() < deadline, "the two workers never started"
        time.sleep(0.1)
    assert len(job_pids(job["id"])) >= 3  # the launcher and both workers
    assert client.training.cancel(job["id"])["state"] == "cancelled"
    deadline = time.monotonic() + 15
    while job_pids(job["id"]):
        assert time.monotonic() < deadline, "job processes survived the cancel"
        time.sleep(0.1)
    assert client.training.get(job["id"])["state"] == "cancelled"


def test_each_line_of_a_multi_worker_job_says_which_rank_wrote_it(
        client: Client, code: dict[str, str]) -> None:
    # Issue 22 item 15: the two workers' lines were interleaved in the log with no rank.
    job = client.training.submit(code=code, resources={"cpu": 1, "workers": 2})
    assert client.training.wait(job["id"], timeout=60)["state"] == "succeeded"
    lines = [line for line in "".join(client.training.logs(job["id"])).splitlines()
             if "hello from user code" in line]
    assert sorted(line.split("hello")[0] for line in lines) == ["[rank0]:", "[rank1]:"]


def test_a_job_past_its_timeout_is_stopped_and_failed(client: Client,
                                                      code: dict[str, str]) -> None:
    job = client.training.submit(code=code, hyperparameters={"sleep": 60}, timeout_s=1)
    done = client.training.wait(job["id"], timeout=30)
    assert done["state"] == "failed"
    assert "ran past its wall time (1 s)" in done["message"]


def test_cli_submits_a_code_package_waits_and_prints_the_logs(
        server: Settings, client: Client, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.cli.main import app, main

    package = tmp_path / "pkg.zip"
    package.write_bytes(_package({"train.py": TRAIN}))
    token = server.resolved_admin_token_file.read_text().strip()
    base = ["--url", server.resolved_public_url, "--token", token, "--project", "alpha"]
    with pytest.raises(SystemExit) as ended:
        app([*base, "--json", "train", "submit", "--code", str(package), "-P", "x=2", "--wait"])
    assert ended.value.code in (0, None)
    out = capfd.readouterr().out
    job = json.loads(out)  # only JSON: no progress line before it (issue 22 item 15)
    assert (job["state"], job["progress"]["score"]) == ("succeeded", 6.0)
    with pytest.raises(SystemExit):
        app([*base, "train", "logs", "-f", job["id"]])
    assert "hello from user code" in capfd.readouterr().out
    with pytest.raises(SystemExit):
        app([*base, "--json", "train", "list", "--state", "succeeded"])
    listed = json.loads(capfd.readouterr().out)
    assert job["id"] in [j["id"] for j in listed["items"]]
    monkeypatch.setattr(sys, "argv", ["modelyard", *base, "train", "submit", "no-such-trainer",
                                      "--snapshot", "x"])
    with pytest.raises(SystemExit) as failed:
        main()
    assert failed.value.code == 1
    assert "unknown trainer" in capfd.readouterr().err


def test_cli_sets_a_jobs_disk_and_process_limits(
        server: Settings, client: Client, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    from modelyard.cli.main import app

    package = tmp_path / "fill.zip"
    package.write_bytes(_package({"train.py": (
        "with open('/tmp/fill', 'wb') as f:\n"
        "    for _ in range(64):\n"
        "        f.write(b'x' * 1024 * 1024)\n")}))
    token = server.resolved_admin_token_file.read_text().strip()
    base = ["--url", server.resolved_public_url, "--token", token, "--project", "alpha"]
    with pytest.raises(SystemExit) as ended:
        app([*base, "--json", "train", "submit", "--code", str(package), "--disk-mb", "32",
             "--processes", "64", "--wait"])
    assert ended.value.code == 1
    job = json.loads(capfd.readouterr().out)
    assert (job["resources"]["disk_mb"], job["resources"]["processes"]) == (32, 64)
    assert job["state"] == "failed" and "filled its work dir (32 MB)" in job["message"]
