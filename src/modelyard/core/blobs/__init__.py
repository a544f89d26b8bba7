"""Blob stores: a few-method `BlobStore` contract, local and S3 backends, content addressing."""

from __future__ import annotations

from modelyard.core.blobs.base import BlobStore, check_key
from modelyard.core.blobs.cas import ContentStore, StoredContent
from modelyard.core.blobs.local import LocalBlobStore

__all__ = ["BlobStore", "ContentStore", "LocalBlobStore", "StoredContent", "check_key", "open_blob_store"]


def open_blob_store(settings: object) -> BlobStore:
    """The blob store the settings name (`local` or `s3`)."""
    from modelyard.core.settings import Settings

    assert isinstance(settings, Settings)
    cfg = settings.blobs
    if cfg.backend == "local":
        return LocalBlobStore(settings.resolved_blob_root)
    if cfg.backend == "s3":
        from modelyard.core.blobs.s3 import S3BlobStore

        if not cfg.s3_bucket:
            raise ValueError("MODELYARD_BLOBS__S3_BUCKET must be set for the s3 blob backend")
        return S3BlobStore(
            bucket=cfg.s3_bucket,
            prefix=cfg.s3_prefix,
            endpoint_url=cfg.s3_endpoint_url,
            region=cfg.s3_region,
            access_key_id=cfg.s3_access_key_id,
            secret_access_key=cfg.s3_secret_access_key,
        )
    raise ValueError(f"unknown blob backend {cfg.backend!r}: use 'local' or 's3'")
