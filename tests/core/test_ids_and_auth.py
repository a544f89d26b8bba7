"""Names, ids, tokens and how roles combine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from modelyard.core.auth import TOKEN_PREFIX, Principal, Role, hash_token, new_token
from modelyard.core.errors import InvalidArgument
from modelyard.core.ids import check_name, new_id


@pytest.mark.parametrize("name", ["a", "digits", "my-model_2.v1", "0day", "x" * 100])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "has space", "-lead", ".hidden", "a..b", "a/b",
                                  "x" * 101, "é"])
def test_bad_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(InvalidArgument, match="lowercase letters") as info:
        check_name(name, "dataset")
    assert info.value.details["field"] == "dataset"


def test_ids_are_unique_prefixed_and_sortable_by_time() -> None:
    ids = [new_id("job") for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(i.startswith("job_") and len(i) <= 40 for i in ids)
    assert ids == sorted(ids)  # strictly in creation order, even within one microsecond


_FORK_AND_COMPARE = """
import os
import subprocess
import sys
from modelyard.core.ids import new_id
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, new_id("x")[-10:].encode())
    os._exit(0)
os.close(write)
mine = new_id("x")[-10:]
os.waitpid(pid, 0)
print(mine, os.read(read, 64).decode())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    """Workers forked from one parent (a server's worker processes) draw different random
    parts, so ids made in the same microsecond by two of them still differ. The fork runs in
    a fresh interpreter: this one has loaded libraries (Lance) that warn on any fork."""
    out = subprocess.run(
        [sys.executable, "-c", _FORK_AND_COMPARE], capture_output=True, text=True, check=True
    ).stdout.split()
    mine, theirs = out
    assert len(mine) == len(theirs) == 10 and theirs != mine


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    a, b = new_token(), new_token()
    assert a != b and a.startswith(TOKEN_PREFIX) and len(a) > 40
    assert hash_token(a) == hash_token(a) != hash_token(b)
    assert a not in hash_token(a)


def test_role_parse() -> None:
    assert Role.parse("editor") is Role.editor
    with pytest.raises(InvalidArgument, match="viewer, editor, admin"):
        Role.parse("owner")
    assert Role.viewer < Role.editor < Role.admin


def test_scope_limits_project_and_caps_role() -> None:
    su = Principal("u", "root", is_superuser=True)
    assert su.role_in("anything") is Role.admin
    job = Principal("u", "root", is_superuser=True, scope_project="alpha", scope_role=Role.editor)
    assert job.role_in("alpha") is Role.editor
    assert job.role_in("beta") is None
    member = Principal("u", "vic", roles={"alpha": Role.viewer}, scope_project="alpha",
                       scope_role=Role.admin)
    assert member.role_in("alpha") is Role.viewer  # a scope never raises a role
