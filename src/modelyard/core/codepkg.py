"""Code packages: user code as a content-addressed, validated archive.

A package arrives as a .zip or a .tar (plain, gzip, bzip2 or xz). `normalize` validates every
member and rewrites the archive in one canonical form — an uncompressed tar, members sorted by
path, regular files only (directories implied), mtime 0, uid/gid 0, mode 0644 — so that its
sha256 depends only on the files' paths and contents: the same source zipped twice, or zipped
and then tarred, is one package under one digest. The canonical form is uncompressed because a
compressor's output depends on its build (zlib and zlib-ng differ), and the digest must not.

What is refused, and how:
- shape (400 InvalidArgument, naming the member): symlinks, hardlinks, devices, fifos and any
  other non-regular member; absolute paths, drive letters, `..` escaping the root; duplicate
  paths (or a file that is also a folder); names that are not UTF-8; encrypted or corrupt
  members; an archive that is neither zip nor tar.
- amount (413 PayloadTooLarge): more members than `max_members`; more unpacked bytes than
  `max_total_bytes`; a compression ratio above `max_ratio`, per member and for the whole archive
  (ignored below `ratio_floor` unpacked bytes, where a high ratio costs nothing). Sizes are
  checked from the headers first and enforced again while reading, because a header can lie:
  no member is read past the bytes it is still allowed.

`unpack` validates again (its input may come from anywhere) and writes regular files only,
never following a link. `check_entrypoint` says whether a package holds what a job would run.
Pure functions, standard library only: the job's worker imports this module.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelyard.core._pkgread import read
from modelyard.core.errors import InvalidArgument

__all__ = [
    "DEFAULT_LIMITS",
    "Package",
    "PackageLimits",
    "check_entrypoint",
    "list_files",
    "normalize",
    "unpack",
]

@dataclass(frozen=True)
class PackageLimits:
    max_members: int = 10_000
    max_total_bytes: int = 256 * 1024 * 1024
    max_ratio: float = 100.0
    ratio_floor: int = 1024 * 1024

    def encode(self) -> str:
        """A one-line form for a job's environment (the worker checks with the same limits)."""
        return f"{self.max_members},{self.max_total_bytes},{self.max_ratio:g},{self.ratio_floor}"

    @classmethod
    def decode(cls, raw: str) -> PackageLimits:
        """The limits `encode` wrote; the defaults when `raw` is empty or malformed."""
        try:
            members, total, ratio, floor = raw.split(",")
            return cls(int(members), int(total), float(ratio), int(floor))
        except ValueError:
            return DEFAULT_LIMITS


DEFAULT_LIMITS = PackageLimits()


@dataclass(frozen=True)
class Package:
    data: bytes  # the canonical archive (an uncompressed tar)
    digest: str  # sha256 of `data`: the package's identity
    files: tuple[str, ...]  # the files' paths, sorted
    size: int  # unpacked bytes, all files together


def normalize(data: bytes, *, limits: PackageLimits = DEFAULT_LIMITS) -> Package:
    """Validates a .zip or .tar(.gz) archive and returns it in canonical form.

    Raises InvalidArgument (400) for a member of the wrong shape and PayloadTooLarge (413) for
    one past a limit (see the module's docstring); nothing is written anywhere.
    """
    files = read(data, limits)
    canonical = _canonical_tar(files)
    return Package(data=canonical, digest=hashlib.sha256(canonical).hexdigest(),
                   files=tuple(sorted(files)), size=sum(len(v) for v in files.values()))


def unpack(data: bytes, dest: Path, *, limits: PackageLimits = DEFAULT_LIMITS) -> list[str]:
    """Validates `data` like `normalize` and writes its files under `dest` (created if absent).

    Writes regular files only, each created afresh (an existing file or a link in the way is an
    error, never followed). Returns the paths written, sorted.
    """
    files = read(data, limits)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in sorted(files):
            _write_under(root, path, files[path])
    finally:
        os.close(root)
    return sorted(files)


def list_files(data: bytes, *, limits: PackageLimits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """The sorted paths of the files in `data`, validated like `normalize` (any archive form,
    so packages stored before canonical form existed are read alike)."""
    return tuple(sorted(read(data, limits)))


def check_entrypoint(files: Iterable[str], entrypoint: str) -> None:
    """Raises InvalidArgument unless `entrypoint` names something the package holds.

    `path/to/script.py` must be a file of the package; `module:function` (or a bare `module`,
    whose function is `main`) must name `module.py`, `pkg/mod.py` or `module/__init__.py`.
    """
    held = set(files)
    if entrypoint.endswith(".py") and ":" not in entrypoint:
        path = entrypoint[2:] if entrypoint.startswith("./") else entrypoint
        if path in held:
            return
        raise InvalidArgument(
            f"entrypoint {entrypoint!r} is not a file of the code package; name one of its "
            f"files ({_sample(held)}) or upload a package that holds it",
            {"field": "code.entrypoint", "files": sorted(held)[:10]})
    module, _, func = entrypoint.partition(":")
    names = module.split(".")
    if not all(n.isidentifier() for n in names) or (func and not func.isidentifier()):
        raise InvalidArgument(
            f"entrypoint {entrypoint!r} is neither `path/to/script.py` nor `module:function`; "
            f"the package holds {_sample(held)}",
            {"field": "code.entrypoint", "files": sorted(held)[:10]})
    base = "/".join(names)
    if f"{base}.py" in held or f"{base}/__init__.py" in held:
        return
    raise InvalidArgument(
        f"entrypoint module {module!r} is not in the code package (no {base}.py or "
        f"{base}/__init__.py); the package holds {_sample(held)}",
        {"field": "code.entrypoint", "files": sorted(held)[:10]})


def _sample(held: set[str]) -> str:
    ordered = sorted(held, key=lambda p: (not p.endswith(".py"), p.count("/"), p))
    shown = ", ".join(ordered[:5])
    return f"{shown}, ..." if len(ordered) > 5 else (shown or "no files")


# writing ---------------------------------------------------------------------------------
def _canonical_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                      encoding="utf-8") as t:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            t.addfile(info, io.BytesIO(files[path]))
    return out.getvalue()


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _write_under(root: int, path: str, content: bytes) -> None:
    """Creates `path` under the directory `root`, opening every folder without following a
    link, so nothing already in `dest` (or raced into it) can redirect a write outside."""
    *folders, name = path.split("/")
    fd = os.dup(root)
    try:
        for folder in folders:
            try:
                os.mkdir(folder, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nxt = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                      dir_fd=fd)
        with os.fdopen(out, "wb") as f:
            f.write(content)
    finally:
        os.close(fd)
