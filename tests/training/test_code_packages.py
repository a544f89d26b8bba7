"""Code packages through the API, as an editor uploads them: one identity per set of files,
every unsafe or oversized archive refused with nothing stored, the entrypoint checked at submit."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from modelyard.core.settings import Settings
from tests.conftest import Team, bearer
from tests.core._archives import (
    tar_member,
    tar_of,
    zip_of,
    zip_symlink,
    zip_with_lying_size,
)

P = "/api/v1/projects/alpha"
SOURCE = {"train.py": "from pkg import steps\nsteps.run()\n", "pkg/__init__.py": "",
          "pkg/steps.py": "def run():\n    print('training')\n"}
ZEROS = b"\0" * (1536 * 1024)  # 1.5 MiB of nothing: under the total below, a bomb by ratio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Package limits small enough for small test archives to pass them."""
    s = Settings(home=tmp_path / "home", background=False)
    s.security.package_max_members = 20
    s.security.package_max_unpacked_bytes = 2 * 1024 * 1024
    return s


def _upload(api: TestClient, team: Team, archive: bytes) -> Any:
    return api.post(f"{P}/training/code", content=archive, headers=bearer(team.editor))


def _stored(api: TestClient) -> tuple[list[str], int]:
    """The content store's blobs and the code packages any project holds."""
    platform = api.app.state.platform  # type: ignore[attr-defined]
    with platform.db.session() as s:
        rows = s.execute(sa.text("SELECT count(*) FROM training_code")).scalar_one()
    return sorted(platform.training.cas.blobs.list("cas/")), int(rows)


def test_the_same_source_zipped_twice_or_tarred_is_one_package(
        api: TestClient, team: Team) -> None:
    reordered = dict(reversed(list(SOURCE.items())))
    forms = [zip_of(SOURCE), zip_of(reordered, date=(2021, 2, 3, 4, 5, 6), dirs=("pkg",)),
             zip_of(SOURCE, compression=zipfile.ZIP_STORED), tar_of(SOURCE, mode="w:gz"),
             tar_of(reordered, mode="w")]
    assert len(set(forms)) == len(forms)  # five different archives
    answers = [_upload(api, team, f) for f in forms]
    assert [r.status_code for r in answers] == [201] * len(forms), answers[0].text
    assert len({r.json()["digest"] for r in answers}) == 1
    blobs, rows = _stored(api)
    assert (len(blobs), rows) == (1, 1)
    edited = _upload(api, team, zip_of({**SOURCE, "pkg/steps.py": "def run(): pass\n"}))
    assert edited.status_code == 201 and edited.json()["digest"] != answers[0].json()["digest"]


REFUSED = [
    ("zip symlink", zip_symlink("pkg/evil.py", "/etc/passwd"), 400, "symlink"),
    ("tar symlink", tar_of(SOURCE, extra=(
        tar_member("pkg/evil.py", tarfile.SYMTYPE, "../../../etc/passwd"),)), 400, "symlink"),
    ("hardlink", tar_of(SOURCE, extra=(
        tar_member("pkg/evil.py", tarfile.LNKTYPE, "/etc/passwd"),)), 400, "hardlink"),
    ("device", tar_of(SOURCE, extra=(tar_member("pkg/mem", tarfile.CHRTYPE),)), 400, "device"),
    ("fifo", tar_of(SOURCE, extra=(tar_member("pkg/pipe", tarfile.FIFOTYPE),)), 400, "fifo"),
    ("absolute", zip_of({**SOURCE, "/tmp/evil.py": "x"}), 400, "absolute"),
    ("escaping", tar_of({**SOURCE, "pkg/../../evil.py": "x"}), 400, "escapes"),
    ("too many members", zip_of({f"m{i}.py": "" for i in range(21)}), 413, "more than 20"),
    ("too large", zip_of({f"w{i}.bin": bytes(range(256)) * 3072 for i in range(3)},
                         compression=zipfile.ZIP_STORED), 413, "more than 2097152 bytes"),
    ("zip bomb", zip_of({**SOURCE, "pkg/weights.bin": ZEROS}), 413, "expands more than 100"),
    ("gzip bomb", tar_of({**SOURCE, "pkg/weights.bin": ZEROS}), 413, "decompression bomb"),
    ("lying header", zip_with_lying_size("pkg/weights.bin", ZEROS, claimed=100), 400,
     "pkg/weights.bin"),
]


@pytest.mark.parametrize(("archive", "status", "words"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_an_unsafe_or_oversized_package_is_refused_and_nothing_is_stored(
        api: TestClient, team: Team, archive: bytes, status: int, words: str) -> None:
    assert len(archive) < 2_400_000  # small archives, each past a limit or a rule
    r = _upload(api, team, archive)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]
    assert _stored(api) == ([], 0)


def _submit(api: TestClient, team: Team, code: dict[str, str]) -> Any:
    return api.post(f"{P}/jobs", json={"code": code}, headers=bearer(team.editor))


def _jobs(api: TestClient, team: Team) -> list[dict[str, Any]]:
    r = api.get(f"{P}/jobs", headers=bearer(team.editor))
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("entrypoint", "words"), [
    ("main.py", "'main.py' is not a file of the code package"),
    ("pkg/train.py", "not a file of the code package"),
    ("pkg.missing:run", "no pkg/missing.py or pkg/missing/__init__.py"),
    ("os:abort", "module 'os' is not in the code package"),
])
def test_a_missing_entrypoint_is_400_at_submit_and_nothing_is_queued(
        api: TestClient, team: Team, entrypoint: str, words: str) -> None:
    digest = _upload(api, team, zip_of(SOURCE)).json()["digest"]
    r = _submit(api, team, {"digest": digest, "entrypoint": entrypoint})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert words in message and "train.py" in message  # and what the package does hold
    assert _jobs(api, team) == []
    for held in ("train.py", "pkg/steps.py", "pkg.steps:run", "pkg"):
        assert _submit(api, team, {"digest": digest, "entrypoint": held}).status_code == 201
    assert len(_jobs(api, team)) == 4


def test_a_study_over_a_missing_entrypoint_is_refused_before_any_trial(
        api: TestClient, team: Team) -> None:
    digest = _upload(api, team, zip_of(SOURCE)).json()["digest"]
    study: dict[str, Any] = {
        "name": "tune", "code": {"digest": digest, "entrypoint": "tune.py"},
        "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 0.5, "log": True}},
        "objective": {"metric": "loss"}, "n_trials": 2}
    r = api.post(f"{P}/hpo/studies", json=study, headers=bearer(team.editor))
    assert r.status_code == 400 and "tune.py" in r.json()["error"]["message"], r.text
    assert api.get(f"{P}/hpo/studies", headers=bearer(team.editor)).json() == []
    study["code"]["entrypoint"] = "train.py"
    assert api.post(f"{P}/hpo/studies", json=study,
                    headers=bearer(team.editor)).status_code == 201
