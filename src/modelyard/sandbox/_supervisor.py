"""The trusted supervisor of one sandboxed run: `python -I -S .../_supervisor.py PLAN_FILE`.

It runs outside the sandbox, as the server's user, leading the process group the server
started in a new session (so it outlives a server restart). It reads the plan the server wrote
(mode 0600, deleted at once: it holds the run's credentials), puts the run in a cgroup of its
own when one can be made, sets the rlimits, starts the command (bwrap ...), watches the limits,
ends the run on a breach, and writes the exit file `{"code": int | null, "reason": str | null}`
(temp file, then rename). Its own exit status is the run's.

Standard library only and started without `site` (`-S`): it is on the path from submit to the
first line of user code. For the same reason it imports nothing that pulls in `re` or `enum`:
the plan is `marshal` (json costs 9 ms of imports), the exit file's JSON is written by hand, and
signals come from `_signal` (`signal` wraps it in enums for another 5 ms).
"""

from __future__ import annotations

import _signal as signal
import marshal
import os
import resource
import select
import sys
import time

if __package__:  # imported (by tests, or as -m modelyard.sandbox._supervisor)
    from modelyard.sandbox._cgroups import Cgroup, kill_quietly, read_text
else:  # run as a script with -I: its own dir is not on sys.path, and nothing else is needed
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _cgroups import Cgroup, kill_quietly, read_text  # type: ignore[no-redef]

TICK_S = 0.2
GRACE_S = 2.0  # before the executor's own SIGKILL (3 s): time to clean up
MIB = 1024 * 1024


class Watch:
    """What the supervisor learns of a bubblewrap sandbox from outside: its processes (through
    the sandbox's own /proc) and how full its /tmp is (through an fd that outlives the run)."""

    def __init__(self, inner_pid: int, disk_mb: int) -> None:
        self.inner = inner_pid
        self.disk_bytes = disk_mb * MIB
        self.disk_fd: int | None = None
        self.disk_full = False

    def check_disk(self) -> None:
        if self.disk_fd is None:
            try:
                fd = os.open(f"/proc/{self.inner}/root/tmp", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return
            st = os.fstatvfs(fd)
            if st.f_blocks * st.f_frsize != self.disk_bytes:  # not yet the sandbox's tmpfs
                os.close(fd)
                return
            self.disk_fd = fd
        st = os.fstatvfs(self.disk_fd)
        # Writes past a tmpfs's size fail with ENOSPC: nearly no room left is what that leaves.
        if st.f_bavail * st.f_frsize * 100 < self.disk_bytes:
            self.disk_full = True

    def usage(self) -> tuple[int, int]:
        """(resident private memory in bytes, threads) of every process in the sandbox."""
        memory = threads = 0
        proc = f"/proc/{self.inner}/root/proc"
        try:
            pids = [p for p in os.listdir(proc) if p.isdigit()]
        except OSError:
            return 0, 0
        for pid in pids:
            try:
                status = read_text(f"{proc}/{pid}/status")
            except OSError:
                continue
            for line in status.splitlines():
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssShmem"):
                    memory += int(value.split()[0]) * 1024
                elif key == "Threads":
                    threads += int(value)
        return memory, threads


def run(plan: dict) -> tuple[int | None, str | None]:
    """Runs the plan to its end: (exit code, the name of the limit that ended it or None)."""
    limits = plan["limits"]
    cgroup = None
    if plan.get("cgroup"):
        cgroup = Cgroup.make(_cgroup_name(plan), limits["memory_mb"], limits["processes"])
    if plan.get("chown") is not None and plan.get("work_dir"):
        os.chown(plan["work_dir"], plan["chown"], plan["chown"])
    info_r, info_w = os.pipe() if plan.get("info_fd") else (-1, -1)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _exec_child(plan, cgroup, info_w)
    if info_w >= 0:
        os.close(info_w)
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        return _supervise(plan, pid, cgroup, info_r, stop)
    finally:
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        if plan.get("remove_dir"):  # the temporary work dir of an unconfined run
            _remove_tree(plan["remove_dir"])


def _remove_tree(path: str) -> None:
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            _ignore(os.unlink, os.path.join(root, name))
        for name in dirs:
            _ignore(os.rmdir, os.path.join(root, name))
    _ignore(os.rmdir, path)


def _ignore(fn: object, path: str) -> None:
    try:
        fn(path)  # type: ignore[operator]
    except OSError:
        pass


def _exec_child(plan: dict, cgroup: Cgroup | None, info_w: int) -> None:
    try:
        limits = plan["limits"]
        if cgroup is not None:
            cgroup.join()
        if info_w >= 0:
            os.dup2(info_w, 3)  # bwrap --info-fd 3: where it tells the sandbox's pid
        files = limits["open_files"]
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if plan.get("nproc"):  # per-uid count: only meaningful for a uid of the run's own
            procs = limits["processes"]
            resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
        if cgroup is None and plan.get("data_limit"):
            # No cgroup: one process's runaway allocation stops here, before the watchdog's
            # next look at the whole sandbox; 2x since VmData counts reserved, untouched pages.
            data = 2 * limits["memory_mb"] * MIB
            resource.setrlimit(resource.RLIMIT_DATA, (data, data))
        # bwrap makes the dirs leading to each bind with the umask: they must be traversable
        # by the run's uid (a server's umask of 077 would shut it out of its own Python).
        os.umask(0o022)
        os.chdir(plan.get("cwd") or "/")
        argv = plan["argv"]
        os.execve(argv[0], argv, plan["env"])
    except BaseException as e:  # noqa: BLE001 - the child must never return into the parent
        try:
            os.write(2, f"modelyard sandbox: could not start: {e}\n".encode())
        finally:
            os._exit(126)


def _supervise(plan: dict, pid: int, cgroup: Cgroup | None, info_r: int,
               stop: dict[str, int]) -> tuple[int | None, str | None]:
    limits = plan["limits"]
    started = time.monotonic()
    wall = limits.get("wall_s")
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    watch = None
    if info_r >= 0:
        inner = _read_inner_pid(info_r, pid)
        watch = Watch(inner, limits["disk_mb"]) if inner else None
    limit: str | None = None
    kill_at: float | None = None
    tick = 0.005  # short at first: the watch on /tmp must be taken while the sandbox lives
    while True:
        tick = min(tick * 2, TICK_S)
        if pidfd is not None:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll(tick * 1000)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if pidfd is None:
            time.sleep(tick)
        if limit is None:
            limit = _breach(limits, cgroup, watch, now - started, wall)
            if limit is not None:
                kill_quietly(pid, signal.SIGKILL)  # bwrap's init dies with it, and its namespace
                if cgroup is not None:
                    cgroup.kill_all()
        if stop["signal"] and kill_at is None:
            kill_quietly(pid, signal.SIGTERM)
            kill_at = now + GRACE_S
        if kill_at is not None and now >= kill_at:
            kill_quietly(pid, signal.SIGKILL)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    if watch is not None:
        watch.check_disk()
    if limit is None and code != 0:
        limit = _after(cgroup, watch)
    return code, limit


REASONS = {
    "wall_s": "ran past its wall time ({wall_s:g} s)",
    "memory_mb": "exceeded its memory limit ({memory_mb} MB)",
    "processes": "exceeded its process limit ({processes})",
    "disk_mb": "filled its work dir ({disk_mb} MB)",
}


def _breach(limits: dict, cgroup: Cgroup | None, watch: Watch | None, elapsed: float,
            wall: float | None) -> str | None:
    """The limit the run is past now (its name in `limits`), if any."""
    if wall is not None and elapsed > wall:
        return "wall_s"
    if cgroup is not None:
        if cgroup.oom_kills():
            return "memory_mb"
        if cgroup.forks_refused():
            return "processes"
    if watch is None:
        return None
    watch.check_disk()
    if cgroup is None:
        memory, threads = watch.usage()
        if memory > limits["memory_mb"] * MIB:
            return "memory_mb"
        if threads >= limits["processes"]:
            return "processes"
    return None


def _after(cgroup: Cgroup | None, watch: Watch | None) -> str | None:
    """The limit that explains why a run that ended on its own failed, if one does."""
    if cgroup is not None:
        if cgroup.oom_kills():
            return "memory_mb"
        if cgroup.forks_refused():
            return "processes"
    if watch is not None and watch.disk_full:
        return "disk_mb"
    return None


def _read_inner_pid(fd: int, outer: int) -> int | None:
    """The sandbox's init as bwrap reports it on its info fd (checked to be bwrap's child)."""
    data = b""
    deadline = time.monotonic() + 5.0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            chunk = os.read(fd, 4096) if ready else b""
            if ready and not chunk:
                break  # bwrap closes it once written (or failed before writing)
            data += chunk
    finally:
        os.close(fd)
    try:  # {"child-pid": 123, ...}
        inner = int(data.split(b'"child-pid":', 1)[1].split(b",")[0].split(b"}")[0])
        status = read_text(f"/proc/{inner}/status")
    except (ValueError, IndexError, OSError):
        return None
    ppid = next((int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in status.splitlines())
                 if k == "PPid"), None)
    return inner if ppid == outer else None


def _cgroup_name(plan: dict) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in plan.get("name", ""))[:64]
    return f"modelyard-{safe or 'run'}-{os.getpid()}"


def write_exit(exit_file: str, code: int | None, reason: str | None,
               limit: str | None) -> None:
    tmp = f"{exit_file}.tmp"
    with open(tmp, "w") as f:
        f.write(f'{{"code": {_json(code)}, "reason": {_json(reason)}, "limit": {_json(limit)}}}')
    os.replace(tmp, exit_file)


def _json(value: int | str | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    escaped = "".join(c if c >= " " and c not in '"\\' else f"\\u{ord(c):04x}" for c in value)
    return f'"{escaped}"'


def main(args: list[str]) -> int:
    if len(args) != 1:
        print("usage: _supervisor.py PLAN_FILE", file=sys.stderr)
        return 2
    with open(args[0], "rb") as f:
        plan = marshal.load(f)
    os.unlink(args[0])
    try:
        code, limit = run(plan)
        reason = REASONS[limit].format(**plan["limits"]) if limit else None
    except Exception as e:  # noqa: BLE001 - an exit file is owed whatever happened
        print(f"modelyard sandbox: supervisor failed: {e!r}", file=sys.stderr, flush=True)
        code, limit, reason = None, None, f"the sandbox failed: {e}"
    if reason:
        print(f"modelyard sandbox: the run {reason}", file=sys.stderr, flush=True)
    write_exit(plan["exit_file"], code, reason, limit)
    return code if code is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
