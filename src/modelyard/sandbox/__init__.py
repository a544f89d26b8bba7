"""The sandbox: where every piece of user code runs (trainer code, pipeline definitions and
steps, later inference code), never in the server process and never with its rights.

On Linux it is bubblewrap: own pid/ipc/uts (and user) namespaces, a read-only view of the system
and the Python environment, a private writable work dir and /tmp, no data dir, database, blob
root or other jobs' dirs, an environment built from an allow-list, and limits on memory,
processes, open files, work-dir disk and wall time. A small trusted supervisor (outside the
sandbox, the process-group leader) starts it, watches the limits, and writes how it ended:
`{"code": int | null, "reason": str | null}` to the exit file, where `reason` names the limit
that ended it.

Public surface (implemented in the private modules):

    Limits(memory_mb=1024, processes=256, open_files=1024, wall_s=None, disk_mb=1024)
    Spec(argv, env, limits, exit_file, work_dir=None, ro_binds={}, gpus=[], name="")
    Outcome(code, reason=None, limit=None)     (limit: the Limits field that ended the run)
    Sandbox(settings, count_users=None, *, cgroups=True)
        .mode            -> "bubblewrap" | "off"   (what user code actually runs under)
        .setting         -> "auto" | "required" | "off"
        .detail          -> str                    (why; shown by /readyz)
        .check_allowed() -> None, raises FailedPrecondition when user code may not run
        .warn_if_unconfined() -> None              (a warning at start when mode is "off")
        .command(spec)   -> list[str]              (argv of the supervisor; run it with
                                                    start_new_session=True)
        .run(spec, stdout, stderr) -> Outcome      (blocking: start, wait, read the exit file)
    read_outcome(exit_file) -> Outcome | None      (old plain-integer exit files read too)

What a run sees (bubblewrap): /usr, /bin, /lib*, /etc and the Python environment (sys.prefix,
sys.base_prefix, modelyard's source dir when installed editable) read-only; its own /proc
(only its processes); a private /dev with a /dev/shm sized like its memory; /tmp, a tmpfs of
`disk_mb`, which is its cwd, HOME and TMPDIR; `ro_binds` read-only; nothing else. The data
dir, blob root, database, metrics file and admin token are masked (an empty tmpfs, or
/dev/null over a file) wherever a bound path would show them. The network namespace is the
host's: jobs call the API back (MODELYARD_URL) and torchrun's gloo uses 127.0.0.1, so every
port on the machine is reachable, the database's too (its password guards it), and abstract
unix sockets as well.

As whom: a root server runs each run as its own uid (`security.sandbox_uid_base` + a slot
hashed from `Spec.name`, 65,536 slots), dropped by setpriv inside the sandbox, with every
capability gone and no_new_privs; RLIMIT_NPROC then counts that run alone. A server that is
not root runs it in a user namespace of its own (`--unshare-user --disable-userns`) as its own
uid, with the process limit set inside it (prlimit) so the server's threads do not count.

Limits: memory and processes by a cgroup of the run's own (v1 memory+pids hierarchies, or a
v2 parent with both controllers delegated) made under the supervisor's cgroup; without one,
a watchdog over the run's processes (private resident memory, threads; 5 looks a second) plus
RLIMIT_DATA at twice the memory limit per process. Open files: RLIMIT_NOFILE. Disk: the /tmp
tmpfs's size (its pages count as memory too). Wall time: the supervisor's clock. A breach of
memory, processes or wall time kills the whole sandbox; a full /tmp fails the write (ENOSPC)
and, if the run then fails, that is its reason.
"""

from __future__ import annotations

from modelyard.sandbox._sandbox import Sandbox
from modelyard.sandbox._spec import Limits, Outcome, Spec, read_outcome

__all__ = ["Limits", "Outcome", "Sandbox", "Spec", "read_outcome"]
