"""Archives built byte by byte for code package tests: good ones, and each kind of bad one."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import time
import zipfile
from collections.abc import Mapping


def zip_of(files: Mapping[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED,
           date: tuple[int, int, int, int, int, int] = (2024, 1, 1, 0, 0, 0),
           dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for d in dirs:
            z.writestr(zipfile.ZipInfo(d.rstrip("/") + "/", date_time=date), b"")
        for name, content in files.items():
            z.writestr(zipfile.ZipInfo(name, date_time=date), content, compress_type=compression)
    return buf.getvalue()


def tar_of(files: Mapping[str, bytes | str], *, mode: str = "w:gz",
           extra: tuple[tarfile.TarInfo, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:  # type: ignore[call-overload]
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), time.time(), 0o755
            t.addfile(info, io.BytesIO(data))
        for info in extra:
            t.addfile(info)
    return buf.getvalue()


def tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def zip_symlink(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", "print(1)\n")
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how zip tools record a symlink
        z.writestr(info, target)
    return buf.getvalue()


def zip_with_lying_size(name: str, content: bytes, claimed: int) -> bytes:
    """A zip whose headers (local and central) claim `claimed` bytes for a member that
    inflates to all of `content`."""
    data = bytearray(zip_of({name: content}))
    real = struct.pack("<I", len(content))
    lie = struct.pack("<I", claimed)
    local = data.index(b"PK\x03\x04")
    assert data[local + 22:local + 26] == real
    data[local + 22:local + 26] = lie
    central = data.index(b"PK\x01\x02")
    assert data[central + 24:central + 28] == real
    data[central + 24:central + 28] = lie
    return bytes(data)


def zip_with_raw_name(raw: bytes) -> bytes:
    """A zip holding one member whose name is the bytes `raw`, without the UTF-8 flag."""
    placeholder = b"X" * len(raw)
    data = zip_of({"train.py": "print(1)\n", placeholder.decode(): "x"})
    assert data.count(placeholder) == 2  # the local and the central header
    return data.replace(placeholder, raw)
