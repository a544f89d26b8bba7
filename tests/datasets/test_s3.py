"""Datasets on an S3-compatible store (moto): commits, snapshots and the loader work unchanged."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from modelyard.core.db import Database
from modelyard.datasets.models import DatasetCreate, SnapshotRequest
from modelyard.datasets.service import DatasetService
from modelyard.runtime.data import load_split_arrays
from tests.datasets.conftest import image_rows


@pytest.mark.integration
def test_commit_snapshot_and_load_on_s3(s3_endpoint: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from modelyard.core.blobs.s3 import S3BlobStore

    bucket = f"ds-{uuid.uuid4().hex[:8]}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 **creds).create_bucket(Bucket=bucket)
    blobs = S3BlobStore(bucket, prefix="root", endpoint_url=s3_endpoint,
                        access_key_id="testing", secret_access_key="testing")
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.migrate()
    svc = DatasetService(db, blobs, None)  # type: ignore[arg-type]
    svc.create_dataset("p", DatasetCreate(name="imgs", type="image_classification"), "me")
    svc.commit_rows("p", "imgs", image_rows(20), "me")
    svc.commit_rows("p", "imgs", image_rows(5, start=20), "me")
    snap = svc.create_snapshot("p", "imgs", SnapshotRequest(version=1), "me")
    assert snap.status == "ready", snap.error
    assert snap.uri.startswith("s3://") and snap.storage_options["endpoint"] == s3_endpoint
    # Any viewer reads snapshots: the credentials are not in them, jobs get them from env.
    assert "secret_access_key" not in snap.storage_options
    assert "access_key_id" not in snap.storage_options
    monkeypatch.setenv("MODELYARD_STORAGE_OPTIONS", json.dumps(blobs.storage_options))
    rows = load_split_arrays(snap.model_dump(mode="json"), "train")[0]
    assert len(rows) == 16 and all(r["image"][:4] == b"\x89PNG" for r in rows)
    assert svc.diff("p", "imgs", 1, 2).rows_added == 5
    assert any(k.startswith("datasets/p/") for k in blobs.list("datasets/"))
