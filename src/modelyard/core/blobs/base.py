"""The contract every blob backend keeps."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from typing import BinaryIO

from modelyard.core.errors import InvalidArgument

_SEGMENT = re.compile(r"^[A-Za-z0-9._=+@-]+$")


def check_key(key: str) -> str:
    """A key is a relative, '/'-separated path with no '..', '.', empty or odd segments."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise InvalidArgument("blob key must be a non-empty string of at most 1024 characters")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidArgument(f"blob key {key[:200]!r} must be relative and use '/' separators")
    for seg in key.split("/"):
        if seg in ("", ".", "..") or not _SEGMENT.match(seg):
            raise InvalidArgument(
                f"blob key {key[:200]!r} has an invalid segment {seg[:100]!r}: use letters, "
                "digits and . _ = + @ -, and no '.' or '..' segments"
            )
    return key


class BlobStore(abc.ABC):
    """Bytes by key.

    Guarantees: `put` is atomic (a reader sees the old object, no object, or the whole new
    one; never a partial one); keys are validated by `check_key` before any I/O; `open`,
    `size` and `delete` raise `NotFound` for a missing key. Implementations are thread safe.
    """

    @abc.abstractmethod
    def put(self, key: str, data: bytes | BinaryIO) -> int:
        """Store `data` (bytes or a readable binary stream, read in chunks); returns its size."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream over the object; the caller closes it."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under `prefix` (a key prefix, not only a folder), in no promised order."""

    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """A URI other engines (Lance, pyarrow) can open: a local path or `s3://bucket/key`."""

    @property
    def storage_options(self) -> dict[str, str]:
        """Options that engines need to reach `uri()` (credentials, endpoint)."""
        return {}

    def get(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()
