"""Content addressing over any `BlobStore`: the same bytes are stored once, under their sha256."""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, cast

from modelyard.core.blobs.base import BlobStore
from modelyard.core.errors import InvalidArgument

CHUNK = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredContent:
    digest: str  # hex sha256
    size: int
    created: bool  # False when the same bytes were already stored


class Staged:
    """Hashed content waiting in a spool; `store()` writes it unless its digest is stored."""

    def __init__(self, cas: ContentStore, digest: str, size: int, spool: BinaryIO) -> None:
        self.cas, self.digest, self.size, self._spool = cas, digest, size, spool

    def store(self) -> StoredContent:
        key = self.cas.key(self.digest)
        if self.cas.blobs.exists(key):
            return StoredContent(self.digest, self.size, created=False)
        self._spool.seek(0)
        self.cas.blobs.put(key, self._spool)
        return StoredContent(self.digest, self.size, created=True)


class ContentStore:
    """Immutable, de-duplicated objects keyed `cas/<ab>/<cd>/<sha256>` in a blob store."""

    def __init__(self, blobs: BlobStore, prefix: str = "cas") -> None:
        self.blobs = blobs
        self.prefix = prefix

    def key(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"{digest[:80]!r} is not a sha256 hex digest")
        return f"{self.prefix}/{digest[:2]}/{digest[2:4]}/{digest}"

    def put(self, data: bytes | BinaryIO, max_bytes: int | None = None,
            expect_digest: str | None = None) -> StoredContent:
        """Hash while spooling to a temp file, then store once under the digest.

        Raises InvalidArgument when the stream is longer than `max_bytes` or its digest differs
        from `expect_digest`; in both cases nothing is stored.
        """
        with self.staged(data, max_bytes, expect_digest) as staged:
            return staged.store()

    @contextmanager
    def staged(self, data: bytes | BinaryIO, max_bytes: int | None = None,
               expect_digest: str | None = None) -> Iterator[Staged]:
        """The content hashed into a temp spool, kept until the block ends, so that the caller
        can store it again should its bytes vanish (a collection) between `store()` and the
        row that references them. Raises as `put` does, before anything is stored."""
        h = hashlib.sha256()
        size = 0
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            if isinstance(data, (bytes, bytearray, memoryview)):
                data = memoryview(data).tobytes()
                if max_bytes is not None and len(data) > max_bytes:
                    raise InvalidArgument(f"content is larger than the limit of {max_bytes} bytes")
                h.update(data)
                spool.write(data)
                size = len(data)
            else:
                while chunk := data.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise InvalidArgument(f"content is larger than the limit of {max_bytes} bytes")
                    h.update(chunk)
                    spool.write(chunk)
            digest = h.hexdigest()
            if expect_digest is not None and expect_digest != digest:
                raise InvalidArgument(
                    f"content sha256 is {digest}, not the expected {expect_digest}: the upload "
                    "was corrupted or cut short; send it again"
                )
            yield Staged(self, digest, size, cast(BinaryIO, spool))

    def open(self, digest: str) -> BinaryIO:
        return self.blobs.open(self.key(digest))

    def get(self, digest: str) -> bytes:
        return self.blobs.get(self.key(digest))

    def exists(self, digest: str) -> bool:
        return self.blobs.exists(self.key(digest))

    def delete(self, digest: str) -> None:
        self.blobs.delete(self.key(digest))
