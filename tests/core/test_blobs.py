"""Blob conformance suite: one class written only against the `BlobStore` contract.

Every backend (local filesystem, S3 against a real moto server) runs the same tests, the way
Optuna runs `optuna/testing/pytest_storages.py` over every storage.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from pathlib import Path

import pytest

from modelyard.core.blobs import BlobStore, ContentStore, LocalBlobStore
from modelyard.core.errors import InvalidArgument, NotFound

MiB = 1024 * 1024


def _s3_store(endpoint: str, prefix: str) -> BlobStore:
    import boto3

    from modelyard.core.blobs.s3 import S3BlobStore

    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, prefix=prefix, endpoint_url=endpoint,
                       access_key_id="testing", secret_access_key="testing")


@pytest.fixture(params=[
    "local",
    pytest.param("s3", marks=pytest.mark.integration),
    pytest.param("s3-prefixed", marks=pytest.mark.integration),
])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("s3_endpoint")
    return _s3_store(endpoint, "tenant/a" if request.param == "s3-prefixed" else "")


class FailingStream(io.RawIOBase):
    """Yields `good` bytes in chunks, then fails the way a dropped upload does."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("client went away mid-upload")
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return b"x" * n


BAD_KEYS = ["/abs/path", "a/../b", "..", "../escape", "a\\b", "a//b", "a/", "/", "",
            "./a", "a/./b", "nul\x00byte", "sp ace"]


class TestBlobStoreContract:
    def test_put_then_get_returns_the_same_bytes(self, store: BlobStore) -> None:
        assert store.put("models/m1/weights.bin", b"\x00\x01hello") == 7
        assert store.get("models/m1/weights.bin") == b"\x00\x01hello"

    def test_empty_object_round_trips(self, store: BlobStore) -> None:
        assert store.put("empty", b"") == 0
        assert store.get("empty") == b""
        assert store.size("empty") == 0
        assert store.exists("empty")

    def test_multi_megabyte_stream_is_stored_and_read_back_in_chunks(
        self, store: BlobStore
    ) -> None:
        # 9 MiB crosses S3's multipart threshold, so both upload paths are exercised.
        payload = os.urandom(9 * MiB + 123)
        assert store.put("big/blob", io.BytesIO(payload)) == len(payload)
        assert store.size("big/blob") == len(payload)
        h = hashlib.sha256()
        chunks = 0
        with store.open("big/blob") as f:
            while chunk := f.read(256 * 1024):
                h.update(chunk)
                chunks += 1
        assert h.hexdigest() == hashlib.sha256(payload).hexdigest()
        assert chunks > 1

    def test_overwrite_replaces_the_whole_object(self, store: BlobStore) -> None:
        store.put("k", b"a much longer first version")
        store.put("k", b"short")
        assert store.get("k") == b"short"
        assert store.size("k") == 5

    def test_exists_and_size(self, store: BlobStore) -> None:
        assert not store.exists("a/b")
        store.put("a/b", b"12345")
        assert store.exists("a/b")
        assert store.size("a/b") == 5
        assert not store.exists("a")  # a folder of keys is not itself a key

    def test_delete_removes_the_object(self, store: BlobStore) -> None:
        store.put("d/x", b"1")
        store.put("d/y", b"2")
        store.delete("d/x")
        assert not store.exists("d/x")
        assert store.get("d/y") == b"2"
        with pytest.raises(NotFound):
            store.get("d/x")

    @pytest.mark.parametrize("op", ["open", "get", "size", "delete"])
    def test_missing_key_raises_not_found(self, store: BlobStore, op: str) -> None:
        with pytest.raises(NotFound, match="does not exist"):
            getattr(store, op)("no/such/key")

    def test_list_by_prefix(self, store: BlobStore) -> None:
        for key in ["runs/r1/a.txt", "runs/r1/b.txt", "runs/r2/a.txt", "runsx", "other/z"]:
            store.put(key, b"x")
        assert sorted(store.list("runs/r1/")) == ["runs/r1/a.txt", "runs/r1/b.txt"]
        assert sorted(store.list("runs")) == ["runs/r1/a.txt", "runs/r1/b.txt",
                                              "runs/r2/a.txt", "runsx"]
        assert sorted(store.list()) == ["other/z", "runs/r1/a.txt", "runs/r1/b.txt",
                                        "runs/r2/a.txt", "runsx"]
        assert list(store.list("nothing/")) == []

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_rejected_before_any_io(self, store: BlobStore, key: str) -> None:
        for call in (lambda: store.put(key, b"evil"), lambda: store.put(key, FailingStream(0)),
                     lambda: store.open(key), lambda: store.get(key),
                     lambda: store.exists(key), lambda: store.size(key),
                     lambda: store.delete(key)):
            with pytest.raises(InvalidArgument):
                call()
        assert list(store.list()) == []

    def test_failed_stream_leaves_the_old_object(self, store: BlobStore) -> None:
        store.put("ckpt/latest", b"old and whole")
        with pytest.raises(ConnectionResetError):
            store.put("ckpt/latest", FailingStream(3 * MiB))
        assert store.get("ckpt/latest") == b"old and whole"
        assert sorted(store.list()) == ["ckpt/latest"]

    def test_failed_stream_leaves_no_object(self, store: BlobStore) -> None:
        with pytest.raises(ConnectionResetError):
            store.put("ckpt/new", FailingStream(2 * MiB + 17))
        assert not store.exists("ckpt/new")
        assert list(store.list()) == []

    def test_concurrent_writers_leave_one_whole_version(self, store: BlobStore) -> None:
        versions = [bytes([i]) * (256 * 1024) for i in range(6)]
        threads = [threading.Thread(target=store.put, args=("shared", v)) for v in versions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.get("shared") in versions

    def test_uri_names_the_object(self, store: BlobStore) -> None:
        store.put("ds/part-0", b"x")
        uri = store.uri("ds/part-0")
        assert uri.endswith("ds/part-0")
        with pytest.raises(InvalidArgument):
            store.uri("../x")


class TestContentStore:
    @pytest.fixture
    def cas(self, store: BlobStore) -> ContentStore:
        return ContentStore(store)

    def test_same_bytes_are_stored_once(self, cas: ContentStore, store: BlobStore) -> None:
        first = cas.put(b"model weights")
        second = cas.put(io.BytesIO(b"model weights"))
        assert first.digest == second.digest == hashlib.sha256(b"model weights").hexdigest()
        assert (first.created, second.created) == (True, False)
        assert first.size == 13
        assert len(list(store.list(cas.prefix + "/"))) == 1
        assert cas.get(first.digest) == b"model weights"
        with cas.open(first.digest) as f:
            assert f.read() == b"model weights"

    def test_different_bytes_get_different_objects(self, cas: ContentStore) -> None:
        a, b = cas.put(b"a"), cas.put(b"b")
        assert a.digest != b.digest
        assert cas.exists(a.digest) and cas.exists(b.digest)

    def test_large_stream_is_hashed_and_stored(self, cas: ContentStore) -> None:
        payload = os.urandom(10 * MiB)  # larger than the in-memory spool
        stored = cas.put(io.BytesIO(payload))
        assert stored.digest == hashlib.sha256(payload).hexdigest()
        assert stored.size == len(payload)
        assert cas.get(stored.digest) == payload

    def test_expect_digest_mismatch_stores_nothing(
        self, cas: ContentStore, store: BlobStore
    ) -> None:
        wrong = hashlib.sha256(b"other").hexdigest()
        for data in (b"payload", io.BytesIO(b"payload")):
            with pytest.raises(InvalidArgument, match="expected"):
                cas.put(data, expect_digest=wrong)
        assert list(store.list()) == []

    def test_expect_digest_match_stores(self, cas: ContentStore) -> None:
        digest = hashlib.sha256(b"payload").hexdigest()
        assert cas.put(b"payload", expect_digest=digest).digest == digest

    @pytest.mark.parametrize("as_stream", [True, False])
    def test_content_over_max_bytes_stores_nothing(
        self, cas: ContentStore, store: BlobStore, as_stream: bool
    ) -> None:
        data = b"x" * 3000
        with pytest.raises(InvalidArgument, match="limit of 2048 bytes"):
            cas.put(io.BytesIO(data) if as_stream else data, max_bytes=2048)
        assert list(store.list()) == []
        assert cas.put(data, max_bytes=3000).size == 3000

    def test_missing_digest_is_not_found(self, cas: ContentStore) -> None:
        digest = hashlib.sha256(b"never stored").hexdigest()
        assert not cas.exists(digest)
        with pytest.raises(NotFound):
            cas.get(digest)

    @pytest.mark.parametrize("digest", ["abc", "../" + "a" * 61, "A" * 64, "g" * 64])
    def test_malformed_digest_is_invalid(self, cas: ContentStore, digest: str) -> None:
        with pytest.raises(InvalidArgument, match="sha256"):
            cas.get(digest)

    def test_delete_removes_content(self, cas: ContentStore) -> None:
        stored = cas.put(b"temporary")
        cas.delete(stored.digest)
        assert not cas.exists(stored.digest)
        assert cas.put(b"temporary").created


@pytest.mark.integration
def test_s3_bad_key_fails_without_contacting_the_server() -> None:
    from modelyard.core.blobs.s3 import S3BlobStore
    from tests._servers.ports import free_port

    # Nothing listens there: any request would fail with a connection error, not InvalidArgument.
    store = S3BlobStore("bucket", endpoint_url=f"http://127.0.0.1:{free_port()}",
                        access_key_id="testing", secret_access_key="testing")
    for call in (lambda: store.put("../x", b"1"), lambda: store.get("/etc/passwd"),
                 lambda: store.size("a//b"), lambda: store.delete("a\\b")):
        with pytest.raises(InvalidArgument):
            call()


def test_local_store_keeps_temp_files_out_of_listings(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        store.put("a", FailingStream(10))
    store.put("b", b"1")
    assert list(store.list()) == ["b"]
    assert list((tmp_path / ".tmp").iterdir()) == []

