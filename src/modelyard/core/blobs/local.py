"""Blobs as files under one root directory."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from modelyard.core.blobs.base import BlobStore, check_key
from modelyard.core.errors import NotFound
from modelyard.core.private import private_dir

CHUNK = 1024 * 1024


class LocalBlobStore(BlobStore):
    def __init__(self, root: str | Path) -> None:
        self.root = private_dir(Path(root).resolve())  # every project's blobs: ours alone
        self._tmp = private_dir(self.root / ".tmp")

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise NotFound(f"blob {key!r} is outside the store")
        return path

    def put(self, key: str, data: bytes | BinaryIO) -> int:
        path = self._path(key)
        tmp = self._tmp / uuid.uuid4().hex
        size = 0
        try:
            with open(tmp, "wb") as f:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    f.write(data)
                    size = len(data)
                else:
                    while chunk := data.read(CHUNK):
                        f.write(chunk)
                        size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"blob {key!r} does not exist") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {key!r} does not exist") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path)
            return
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"blob {key!r} does not exist") from None

    def list(self, prefix: str = "") -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != ".tmp"]
            rel = Path(dirpath).relative_to(self.root)
            for name in filenames:
                key = (rel / name).as_posix() if rel.parts else name
                if key.startswith(prefix):
                    yield key

    def uri(self, key: str) -> str:
        return str(self._path(key))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
