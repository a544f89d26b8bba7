"""The job's worker unpacks its code package with the same checks as an upload."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from modelyard.core.codepkg import PackageLimits
from modelyard.runtime import worker
from tests.core._archives import tar_member, tar_of, zip_of


def test_the_worker_refuses_a_package_that_never_went_through_an_upload(tmp_path: Path) -> None:
    # Bytes from the network may not be what was checked at upload: they are checked again.
    evil = tar_of({"train.py": "print(1)\n"}, mode="w", extra=(
        tar_member("data", tarfile.SYMTYPE, "/"),))
    with pytest.raises(SystemExit, match="'data' is a symlink"):
        worker._unpack(evil, tmp_path / "code")
    assert not list((tmp_path / "code").rglob("*"))


def test_the_worker_unpacks_under_the_servers_limits(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    package = zip_of({"train.py": "print(1)\n", "pkg/a.py": "", "pkg/b.py": ""})
    worker._unpack(package, tmp_path / "ok")
    assert (tmp_path / "ok" / "pkg" / "a.py").exists()
    monkeypatch.setenv("MODELYARD_PACKAGE_LIMITS", PackageLimits(max_members=2).encode())
    with pytest.raises(SystemExit, match="more than 2 members"):
        worker._unpack(package, tmp_path / "small")
