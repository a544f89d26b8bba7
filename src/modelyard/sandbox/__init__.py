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

    Limits(memory_mb, processes, open_files, wall_s, disk_mb)
    Spec(argv, env, limits, exit_file, work_dir=None, ro_binds={}, gpus=[])
    Outcome(code, reason)
    Sandbox(settings)
        .mode            -> "bubblewrap" | "off"   (what user code actually runs under)
        .detail          -> str                    (why; shown by /readyz)
        .check_allowed() -> None, raises FailedPrecondition when user code may not run
        .command(spec)   -> list[str]              (argv of the supervisor; run it with
                                                    start_new_session=True)
        .run(spec, stdout, stderr) -> Outcome      (blocking: start, wait, read the exit file)
    read_outcome(exit_file) -> Outcome | None
"""

from __future__ import annotations

from modelyard.sandbox._sandbox import Sandbox
from modelyard.sandbox._spec import Limits, Outcome, Spec, read_outcome

__all__ = ["Limits", "Outcome", "Sandbox", "Spec", "read_outcome"]
