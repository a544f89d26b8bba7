"""Code packages: one identity per set of files, and no archive that could harm the unpacker."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelyard.core.codepkg import (
    DEFAULT_LIMITS,
    PackageLimits,
    check_entrypoint,
    list_files,
    normalize,
    unpack,
)
from modelyard.core.errors import InvalidArgument, ModelyardError, PayloadTooLarge
from tests.core._archives import (
    tar_member,
    tar_of,
    zip_of,
    zip_symlink,
    zip_with_lying_size,
    zip_with_raw_name,
)

SOURCE = {"train.py": "import pkg.model\nprint('hi')\n", "pkg/__init__.py": "",
          "pkg/model.py": "SIZE = 3\n", "data/labels.txt": "a\nb\n"}
SMALL = PackageLimits(max_members=20, max_total_bytes=2 * 1024 * 1024, max_ratio=100,
                      ratio_floor=1024 * 1024)
ZEROS = b"\0" * (1536 * 1024)  # 1.5 MiB: under SMALL's total, over its ratio floor


def test_the_digest_depends_on_paths_and_contents_only() -> None:
    reordered = dict(reversed(list(SOURCE.items())))
    forms = [
        zip_of(SOURCE),
        zip_of(reordered, date=(2020, 5, 6, 7, 8, 10), dirs=("pkg", "data")),
        zip_of(SOURCE, compression=zipfile.ZIP_STORED),
        zip_of(SOURCE, compression=zipfile.ZIP_BZIP2),
        tar_of(SOURCE, mode="w"),
        tar_of(reordered, mode="w:gz"),
        tar_of(SOURCE, mode="w:bz2"),
        tar_of(SOURCE, mode="w:xz"),
        zip_of({f"./{k}": v for k, v in SOURCE.items()}),
    ]
    digests = {normalize(f).digest for f in forms}
    assert len(digests) == 1
    package = normalize(forms[0])
    assert package.files == ("data/labels.txt", "pkg/__init__.py", "pkg/model.py", "train.py")
    assert package.size == sum(len(v) for v in SOURCE.values())
    assert normalize(package.data).digest == package.digest  # the canonical form is stable
    changed = normalize(zip_of({**SOURCE, "pkg/model.py": "SIZE = 4\n"})).digest
    renamed = normalize(zip_of({**{k: v for k, v in SOURCE.items() if k != "train.py"},
                                "main.py": SOURCE["train.py"]})).digest
    assert len({package.digest, changed, renamed}) == 3


def test_the_canonical_archive_holds_plain_files_without_owner_or_time() -> None:
    package = normalize(tar_of(SOURCE, mode="w:gz"))
    with tarfile.open(fileobj=io.BytesIO(package.data), mode="r:") as t:
        members = t.getmembers()
        assert [m.name for m in members] == list(package.files)
        assert {(m.type, m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname) for m in members} == {
            (tarfile.REGTYPE, 0, 0o644, 0, 0, "", "")}
        assert t.extractfile("pkg/model.py").read() == b"SIZE = 3\n"  # type: ignore[union-attr]


def _refused(data: bytes, limits: PackageLimits = DEFAULT_LIMITS) -> ModelyardError:
    with pytest.raises(ModelyardError) as e:
        normalize(data, limits=limits)
    return e.value


@pytest.mark.parametrize(("archive", "member", "words"), [
    (zip_symlink("link.py", "/etc/passwd"), "link.py", "symlink"),
    (tar_of(SOURCE, extra=(tar_member("link.py", tarfile.SYMTYPE, "/etc/passwd"),)),
     "link.py", "symlink"),
    (tar_of(SOURCE, extra=(tar_member("hard.py", tarfile.LNKTYPE, "train.py"),)),
     "hard.py", "hardlink"),
    (tar_of(SOURCE, extra=(tar_member("dev", tarfile.CHRTYPE),)), "dev", "device"),
    (tar_of(SOURCE, extra=(tar_member("blk", tarfile.BLKTYPE),)), "blk", "device"),
    (tar_of(SOURCE, extra=(tar_member("pipe", tarfile.FIFOTYPE),)), "pipe", "fifo"),
    (zip_of({"/etc/cron.d/x": "x"}), "/etc/cron.d/x", "absolute"),
    (tar_of({"/abs.py": "x"}), "/abs.py", "absolute"),
    (zip_of({"C:/evil.py": "x"}), "C:/evil.py", "absolute"),
    (zip_of({"../evil.py": "x"}), "../evil.py", "escapes"),
    (zip_of({"pkg/../../evil.py": "x"}), "pkg/../../evil.py", "escapes"),
    (zip_of({"..\\evil.py": "x"}), "evil.py", "escapes"),  # a backslash separates too
    (tar_of({"a/../../evil.py": "x"}), "a/../../evil.py", "escapes"),
    (tar_of({"train.py": "a", "./train.py": "b"}), "train.py", "twice"),
    (zip_of({"pkg": "a file", "pkg/mod.py": "x"}), "pkg", "both as a file and as the folder"),
    (zip_with_raw_name(b"caf\xe9.py"), "caf", "not UTF-8"),
])
def test_unsafe_members_are_refused_by_name(archive: bytes, member: str, words: str) -> None:
    error = _refused(archive)
    assert isinstance(error, InvalidArgument) and not isinstance(error, PayloadTooLarge)
    assert member in error.message and words in error.message


def test_non_archives_and_empty_archives_are_refused() -> None:
    assert "must be a .zip" in _refused(b"print('not an archive')\n").message
    assert "corrupt" in _refused(b"\x1f\x8b" + b"garbage" * 100).message
    assert "must be a .zip" in _refused(gzip.compress(b"print('not a tar')\n" * 100)).message
    assert "no files" in _refused(zip_of({}, dirs=("empty",))).message


def test_limits_on_members_size_and_ratio_are_413() -> None:
    many = zip_of({f"m{i}.py": "x" for i in range(21)})
    big = zip_of({f"w{i}.bin": bytes(range(256)) * 4096 for i in range(3)},
                 compression=zipfile.ZIP_STORED)  # 3 MiB that do not compress
    bomb = zip_of({"bomb.bin": ZEROS})  # 1.5 MiB from about 1.5 KiB
    for archive, words in ((many, "more than 20 members"), (big, "more than 2097152 bytes"),
                           (bomb, "expands more than 100 times")):
        error = _refused(archive, SMALL)
        assert isinstance(error, PayloadTooLarge) and words in error.message, error.message
    assert normalize(many).files  # the same archives pass the default limits
    assert normalize(big).size == 3 * 1024 * 1024


def test_a_zip_directory_that_understates_its_member_count_still_meets_the_limit() -> None:
    many = bytearray(zip_of({f"m{i}.py": "x" for i in range(21)}))
    end = many.rindex(b"PK\x05\x06")
    many[end + 8:end + 12] = (1).to_bytes(2, "little") * 2  # "1 member" on disk and in all
    with zipfile.ZipFile(io.BytesIO(bytes(many))) as z:
        assert len(z.infolist()) == 21  # zipfile reads the directory by its size
    error = _refused(bytes(many), SMALL)
    assert isinstance(error, PayloadTooLarge) and "more than 20 members" in error.message
    tarred = tar_of({f"m{i}.py": "x" for i in range(21)})
    assert "more than 20 members" in _refused(tarred, SMALL).message


def test_a_header_that_understates_a_members_size_does_not_pass() -> None:
    lying = zip_with_lying_size("bomb.bin", ZEROS, claimed=100)
    with zipfile.ZipFile(io.BytesIO(lying)) as z:
        assert z.getinfo("bomb.bin").file_size == 100  # what a header-only check would trust
    error = _refused(lying, SMALL)
    assert "bomb.bin" in error.message


def test_a_gzip_bomb_is_stopped_while_reading_though_its_headers_are_within_limits() -> None:
    bomb = tar_of({"train.py": "print(1)\n", "zeros.bin": ZEROS}, mode="w:gz")
    assert len(bomb) < 16 * 1024  # the headers say 1.5 MiB, under SMALL's 2 MiB
    error = _refused(bomb, SMALL)
    assert isinstance(error, PayloadTooLarge) and "decompression bomb" in error.message


def test_unpack_writes_the_files_and_refuses_what_upload_would_refuse(tmp_path: Path) -> None:
    written = unpack(zip_of(SOURCE), tmp_path / "ok")
    assert written == sorted(SOURCE)
    assert (tmp_path / "ok/pkg/model.py").read_text() == "SIZE = 3\n"
    evil = tar_of(SOURCE, mode="w", extra=(tar_member("pkg/x.py", tarfile.SYMTYPE,
                                                      str(tmp_path / "outside.py")),))
    with pytest.raises(InvalidArgument, match="symlink"):
        unpack(evil, tmp_path / "bad")  # an archive that never went through an upload
    with pytest.raises(PayloadTooLarge):
        unpack(zip_of({"bomb.bin": ZEROS}), tmp_path / "bomb", limits=SMALL)
    assert not list((tmp_path / "bad").rglob("*")) and not (tmp_path / "outside.py").exists()
    assert not list((tmp_path / "bomb").rglob("*"))


def test_unpack_never_follows_a_link_already_in_its_destination(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "pkg").symlink_to(outside)
    (dest / "train.py").symlink_to(outside / "train.py")
    with pytest.raises(OSError):
        unpack(zip_of({"pkg/model.py": "x"}), dest)
    with pytest.raises(OSError):
        unpack(zip_of({"train.py": "x"}), dest)
    assert list(outside.iterdir()) == []


def test_list_files_reads_canonical_and_uploaded_forms_alike() -> None:
    package = normalize(zip_of(SOURCE))
    assert list_files(package.data) == list_files(zip_of(SOURCE)) == package.files


@pytest.mark.parametrize("entrypoint", ["train.py", "./train.py", "pkg/model.py", "pkg.model:run",
                                        "pkg:main", "pkg", "train:main"])
def test_an_entrypoint_the_package_holds_is_accepted(entrypoint: str) -> None:
    check_entrypoint(normalize(zip_of(SOURCE)).files, entrypoint)


@pytest.mark.parametrize(("entrypoint", "words"), [
    ("main.py", "'main.py' is not a file of the code package"),
    ("pkg/other.py", "not a file"),
    ("data:main", "no data.py or data/__init__.py"),
    ("pkg.missing:run", "no pkg/missing.py"),
    ("os:abort", "module 'os' is not in the code package"),
    ("not a module:x", "neither"),
])
def test_an_entrypoint_the_package_lacks_is_refused_with_what_it_holds(
        entrypoint: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_entrypoint(normalize(zip_of(SOURCE)).files, entrypoint)
    assert words in e.value.message and "train.py" in e.value.message


def test_limits_travel_to_the_worker_intact() -> None:
    assert PackageLimits.decode(SMALL.encode()) == SMALL
    assert PackageLimits.decode("") == PackageLimits.decode("junk") == DEFAULT_LIMITS
