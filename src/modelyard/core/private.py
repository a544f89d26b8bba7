"""Files and folders only the server's OS user may read: the data dir and what holds secrets.

The data dir holds the database, the blobs, the metrics and the admin token; on a machine
shared with other users (or with jobs running under other uids) it must be 0700, its
database and metrics files 0600, whatever the umask of whoever started the server. `mkdir` and
`open` apply the umask, which can only remove bits, so a mode is set with chmod after creating;
an existing path that is looser is tightened, with a warning (someone or something opened it).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("modelyard.security")

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, tighten_existing: bool = True) -> Path:
    """Creates `path` (and missing parents, each 0700), or tightens it to 0700 when it exists
    and `tighten_existing` (False for the parent of a file a user may place anywhere: their
    own folder keeps its mode)."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:  # made by another process meanwhile
            continue
        os.chmod(d, DIR_MODE)
    if tighten_existing and not missing:
        tighten(path, DIR_MODE, follow=True)  # a data dir that is a link: its target
    return path


def private_file(path: Path) -> Path:
    """Creates `path` empty if absent, and makes it 0600 (an existing file keeps its bytes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        tighten(path, FILE_MODE)
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten(path: Path, mode: int, *, follow: bool = False, warn: bool = True) -> bool:
    """Removes the bits of `path` beyond `mode` (a missing path is left alone); True if it had
    to. A symlink is followed only when `follow`: the server chmods no file a link planted in
    its data dir points to. `warn=False` for a file just made by a library that applies the
    umask (nobody opened it up: there is nothing to report)."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        log.warning("%s is a symlink; its target's mode is not checked", path)
        return False
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode == 0:
        return False
    os.chmod(path, current & mode)
    if warn:
        log.warning("%s was open to others (mode %o); now %o", path, current, current & mode)
    return True


def private_files(*paths: Path, warn: bool = True) -> None:
    """Tightens each existing path to 0600 (SQLite's -wal/-shm, DuckDB's files)."""
    for p in paths:
        tighten(p, FILE_MODE, warn=warn)
