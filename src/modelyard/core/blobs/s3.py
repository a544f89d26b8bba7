"""Blobs in an S3-compatible bucket (AWS, MinIO, moto...)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, BinaryIO

from modelyard.core.blobs.base import BlobStore, check_key
from modelyard.core.errors import NotFound


class S3BlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self._creds = (access_key_id, secret_access_key)
        self._s3 = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes | BinaryIO) -> int:
        # A single PUT or a completed multipart upload becomes visible whole, or not at all.
        body: Any = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray, memoryview)) else data
        counter = _CountingReader(body)
        self._s3.upload_fileobj(counter, self.bucket, self._key(key))
        return counter.count

    def open(self, key: str) -> BinaryIO:
        try:
            obj = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._s3.exceptions.NoSuchKey:
            raise NotFound(f"blob {key!r} does not exist") from None
        return obj["Body"]  # type: ignore[no-any-return]

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except NotFound:
            return False

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound(f"blob {key!r} does not exist") from None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        full = self._key(key)
        keys = [k for k in self._raw_list(full + "/")]
        if not keys:
            self.size(key)  # raises NotFound
            keys = [full]
        for i in range(0, len(keys), 1000):
            self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]}
            )

    def _raw_list(self, prefix: str) -> Iterator[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def list(self, prefix: str = "") -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        for key in self._raw_list(base + prefix):
            yield key[len(base) :]

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    @property
    def storage_options(self) -> dict[str, str]:
        opts = {"region": self.region}
        if self.endpoint_url:
            opts["endpoint"] = self.endpoint_url
            opts["allow_http"] = str(self.endpoint_url.startswith("http://")).lower()
        if self._creds[0]:
            opts["access_key_id"] = self._creds[0]
            opts["secret_access_key"] = self._creds[1] or ""
        return opts


class _CountingReader(io.RawIOBase):
    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self.inner.read(n)
        self.count += len(chunk)
        return chunk
