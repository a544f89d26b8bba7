"""Reading an uploaded archive member by member, validating each (see `codepkg`'s docstring
for what is refused and with which error). Returns the files as {path: bytes}."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from modelyard.core.errors import InvalidArgument, PayloadTooLarge

if TYPE_CHECKING:
    from modelyard.core.codepkg import PackageLimits

CHUNK = 1024 * 1024
MAX_PATH_CHARS = 1024
MAX_PART_BYTES = 255  # what common file systems take for one name


class _Budget:
    """The unpacked bytes an archive may still produce; every read is charged here."""

    def __init__(self, limits: PackageLimits, archive_bytes: int | None) -> None:
        self.limits = limits
        self.archive_bytes = archive_bytes  # None: the ratio is bounded elsewhere
        self.total = 0
        self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise PayloadTooLarge(
                f"the code package has more than {self.limits.max_members} members; leave out "
                "what the job does not need (data belongs in a dataset)",
                {"member": name, "limit": self.limits.max_members})

    def too_large(self, name: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the code package unpacks to more than {self.limits.max_total_bytes} bytes (at "
            f"member {name!r}); leave out large files (data belongs in a dataset, weights in "
            "the model registry)", {"member": name, "limit": self.limits.max_total_bytes})

    def charge(self, name: str, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise self.too_large(name)
        if self.archive_bytes is not None:
            _ratio(name, self.total, self.archive_bytes, self.limits, "the whole archive")

    def remaining(self) -> int:
        return self.limits.max_total_bytes - self.total


def _ratio(name: str, unpacked: int, packed: int, limits: PackageLimits, what: str) -> None:
    if unpacked > limits.ratio_floor and unpacked > limits.max_ratio * max(packed, 1):
        raise PayloadTooLarge(
            f"code package member {name!r} expands more than {limits.max_ratio:g} times "
            f"({what}); that is a decompression bomb, not code: package the real files",
            {"member": name, "limit": limits.max_ratio})


def read(data: bytes, limits: PackageLimits) -> dict[str, bytes]:
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _read_zip(data, limits)
    stream = _decompressed(data, limits)
    if stream is None:
        raise InvalidArgument("a code package must be a .zip, .tar, .tar.gz or .tgz archive")
    return _read_tar(stream, limits)


def _read_zip(data: bytes, limits: PackageLimits) -> dict[str, bytes]:
    budget = _Budget(limits, len(data))
    _check_directory(data, limits)
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise InvalidArgument(f"the code package is not a readable zip archive: {e}") from None
    with z:
        infos = z.infolist()
        seen: dict[str, bytes] = {}
        members: list[tuple[str, zipfile.ZipInfo]] = []
        claimed = 0
        for info in infos:  # every header is checked before any member is read
            budget.member(info.filename)
            name = _zip_name(info)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if info.is_dir() or kind == stat.S_IFDIR:
                _path(name.rstrip("/") or ".", allow_root=True)
                continue
            if kind not in (0, stat.S_IFREG):
                _refuse_kind(name, _KINDS.get(kind, "special file"))
            if info.flag_bits & 0x1:
                raise InvalidArgument(f"code package member {name!r} is encrypted; upload it "
                                      "unencrypted", {"member": name})
            path = _path(name)
            claimed += info.file_size
            if claimed > limits.max_total_bytes:
                raise budget.too_large(path)
            _ratio(name, info.file_size, info.compress_size, limits, "its header")
            _ratio(name, claimed, len(data), limits, "the whole archive, by its headers")
            members.append((path, info))
        for path, info in members:
            _add(seen, path, _read_zip_member(z, info, path, budget, limits))
    _check_tree(seen)
    return seen


CD_ENTRY_BYTES = 2048  # a generous average for one central directory entry (46 + name + extra)


def _check_directory(data: bytes, limits: PackageLimits) -> None:
    """Refuses a zip whose end record announces too many members, or a central directory too
    big for that many, before zipfile builds an object for every entry (memory)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or len(data) < at + 22:
        return  # zipfile will say what is wrong
    total = int.from_bytes(data[at + 10:at + 12], "little")
    size = int.from_bytes(data[at + 12:at + 16], "little")
    zip64 = data.rfind(b"PK\x06\x06", 0, at)
    if (total == 0xFFFF or size == 0xFFFFFFFF) and zip64 >= 0 and len(data) >= zip64 + 56:
        total = int.from_bytes(data[zip64 + 32:zip64 + 40], "little")
        size = int.from_bytes(data[zip64 + 40:zip64 + 48], "little")
    if total > limits.max_members or size > limits.max_members * CD_ENTRY_BYTES:
        raise PayloadTooLarge(
            f"the code package has more than {limits.max_members} members (its zip directory "
            f"lists {total} in {size} bytes); leave out what the job does not need",
            {"limit": limits.max_members})


def _zip_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:
        # Without the UTF-8 flag zipfile decoded the name as cp437; many tools still write
        # UTF-8 there, so the raw bytes decide.
        try:
            name = name.encode("cp437").decode("utf-8")
        except UnicodeError:
            raise InvalidArgument(
                f"code package member {info.filename!r} has a name that is not UTF-8; rename "
                "it (or zip with a tool that writes UTF-8 names)",
                {"member": info.filename}) from None
    return name


def _read_zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, budget: _Budget,
                     limits: PackageLimits) -> bytes:
    out = bytearray()
    try:
        with z.open(info) as f:
            while True:
                # Never more than one byte past what is still allowed: a lying header cannot
                # make us inflate a bomb.
                chunk = f.read(min(CHUNK, budget.remaining() + 1))
                if not chunk:
                    break
                out += chunk
                budget.charge(path, len(chunk))
                _ratio(path, len(out), info.compress_size, limits, "while reading")
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError,
            NotImplementedError, RuntimeError, ValueError) as e:
        raise InvalidArgument(f"code package member {path!r} cannot be read ({e}); zip the "
                              "package again", {"member": path}) from None
    return bytes(out)


def _decompressed(data: bytes, limits: PackageLimits) -> IO[bytes] | None:
    """The tar stream inside `data` (decompressed, capped), or None when it is no tar."""
    raw = io.BytesIO(data)
    inner: io.BufferedIOBase | None = None
    if data.startswith(b"\x1f\x8b"):
        inner = gzip.GzipFile(fileobj=raw)
    elif data.startswith(b"BZh"):
        inner = bz2.BZ2File(raw)
    elif data.startswith(b"\xfd7zXZ\x00"):
        inner = lzma.LZMAFile(raw)
    if inner is not None:
        return io.BufferedReader(_Capped(inner, limits, len(data)), CHUNK)
    if len(data) >= 512 and (data[257:262] == b"ustar" or _is_v7_tar(data)):
        return raw
    return None


def _is_v7_tar(data: bytes) -> bool:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:") is not None
    except (tarfile.TarError, OSError, ValueError):
        return False


class _Capped(io.RawIOBase):
    """A decompressed stream that refuses to produce more than an archive may unpack to.

    tarfile reads some headers (pax, GNU long names) whole into memory; the cap bounds them
    along with the members' data, by size and by ratio to the compressed archive."""

    def __init__(self, inner: io.BufferedIOBase, limits: PackageLimits, packed: int) -> None:
        super().__init__()
        self.inner = inner
        overhead = 1024 * (limits.max_members + 2)  # headers and padding of every member
        self.cap = min(limits.max_total_bytes + overhead,
                       max(limits.ratio_floor, int(limits.max_ratio * packed)) + overhead)
        self.limits = limits
        self.seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(b), self.cap - self.seen + 1)
        try:
            chunk = self.inner.read(want)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            raise InvalidArgument(f"the code package's compressed stream is corrupt ({e}); "
                                  "pack it again") from None
        self.seen += len(chunk)
        if self.seen > self.cap:
            raise PayloadTooLarge(
                f"the code package's compressed stream unpacks to more than {self.cap} bytes "
                f"(at most {self.limits.max_total_bytes} unpacked, {self.limits.max_ratio:g} "
                "times the archive); that is a decompression bomb, not code",
                {"limit": self.limits.max_total_bytes})
        b[: len(chunk)] = chunk
        return len(chunk)


def _read_tar(stream: IO[bytes], limits: PackageLimits) -> dict[str, bytes]:
    # A tar's members are not compressed one by one: the ratio is bounded on the whole
    # decompressed stream (`_Capped`), a plain tar's is 1.
    budget = _Budget(limits, None)
    seen: dict[str, bytes] = {}
    try:
        # Stream mode: members are read in order, nothing seeks back, nothing is kept but
        # what we keep.
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                          errors="surrogateescape") as t:
            for m in _members(t):
                name = m.name
                try:
                    name.encode("utf-8")
                except UnicodeError:
                    raise InvalidArgument(
                        f"code package member {name!r} has a name that is not UTF-8; rename it",
                        {"member": name}) from None
                budget.member(name)
                if m.isdir():
                    _path(name.rstrip("/") or ".", allow_root=True)
                    continue
                if not m.isreg():
                    _refuse_kind(name, _tar_kind(m))
                path = _path(name)
                if m.size > budget.remaining():
                    raise budget.too_large(path)
                f = t.extractfile(m)
                content = b"" if f is None else f.read(min(m.size, budget.remaining()) + 1)
                if len(content) != m.size:
                    raise InvalidArgument(f"code package member {path!r} is cut short or its "
                                          "header is wrong; pack it again", {"member": path})
                budget.charge(path, len(content))
                _add(seen, path, content)
    except tarfile.TarError as e:
        raise InvalidArgument(f"the code package is not a readable tar archive ({e}); a code "
                              "package must be a .zip, .tar, .tar.gz or .tgz archive") from None
    _check_tree(seen)
    return seen


def _members(t: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (m := t.next()) is not None:
        yield m


_KINDS = {stat.S_IFLNK: "symlink", stat.S_IFCHR: "character device",
          stat.S_IFBLK: "block device", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


def _tar_kind(m: tarfile.TarInfo) -> str:
    if m.issym():
        return "symlink"
    if m.islnk():
        return "hardlink"
    if m.ischr():
        return "character device"
    if m.isblk():
        return "block device"
    if m.isfifo():
        return "fifo"
    return "special file"


def _refuse_kind(name: str, kind: str) -> None:
    raise InvalidArgument(
        f"code package member {name!r} is a {kind}; a package may hold only regular files and "
        "folders: replace it with the file itself", {"member": name, "type": kind})


_DRIVE = re.compile(r"^[A-Za-z]:")


def _path(name: str, *, allow_root: bool = False) -> str:
    """The member's path, relative and normalized, or InvalidArgument naming it."""
    raw = name.replace("\\", "/")
    if "\x00" in raw or len(raw) > MAX_PATH_CHARS:
        raise InvalidArgument(f"code package member {name[:100]!r} has an unusable name; "
                              "rename it", {"member": name[:200]})
    if raw.startswith("/") or _DRIVE.match(raw):
        raise InvalidArgument(f"code package member {name!r} has an absolute path, which escapes "
                              "the package; use paths relative to its root", {"member": name})
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"code package member {name!r} escapes the package (`..`); use "
                              "paths inside it", {"member": name})
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for p in parts):
        raise InvalidArgument(f"code package member {name!r} has a name part longer than "
                              f"{MAX_PART_BYTES} bytes; shorten it", {"member": name})
    if not parts and not allow_root:
        raise InvalidArgument(f"code package member {name!r} has no file name",
                              {"member": name})
    return "/".join(parts)


def _add(seen: dict[str, bytes], path: str, content: bytes) -> None:
    if path in seen:
        raise InvalidArgument(f"code package holds {path!r} twice; keep one",
                              {"member": path})
    seen[path] = content


def _check_tree(files: dict[str, bytes]) -> None:
    """A package holds at least one file; a path that is a file is not also a folder."""
    if not files:
        raise InvalidArgument("the code package holds no files; add the code the job runs")
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in files:
                raise InvalidArgument(
                    f"code package holds {folder!r} both as a file and as the folder of "
                    f"{path!r}; rename one", {"member": folder})
