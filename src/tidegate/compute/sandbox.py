"""Run one algorithm in a bubblewrap sandbox under resource limits.

What a job sees (bubblewrap, fresh mount/pid/ipc/uts/net namespaces, root read-only):
``/usr`` (+ the ``/bin``, ``/lib*`` links), a few ``/etc`` files the runtimes need,
the runtime's own prefix when outside ``/usr``, a new ``/proc`` (its own processes
only), a minimal ``/dev``, a size-capped ``/tmp``, and ``/data``: ``inputs``, ``ddos``
and ``transformations`` read-only, ``outputs`` and ``logs`` writable. Nothing else of
the host: no provider data dir, no repository, no ``/root`` or ``/home``.

Who it runs as: when Tidegate is root, bwrap runs without a user namespace and
``setpriv`` drops the algorithm to a dedicated uid (one per running job, from
``sandbox_uid``) with no capabilities and ``no_new_privs``; otherwise bwrap maps the
provider's uid into a user namespace with every capability dropped.

Limits: memory (swap included) and processes for the whole job through a cgroup of its
own where the machine allows (:mod:`tidegate.compute.cgroups`), else per process with
RLIMIT_AS and RLIMIT_NPROC; ``prlimit`` on the whole sandbox for CPU time, size of any
written file and open files; plus, enforced here, wall-clock time and the disk the job
writes (``/data/outputs``, ``/data/logs`` and its log, against the environment's
``diskGB``), both killing the job. Known gaps are listed in ``docs/compute.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import shutil
import signal
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tidegate.compute.cgroups import CgroupLayout, JobCgroup, discover, sweep
from tidegate.compute.environments import Environment
from tidegate.compute.seccomp import SeccompUnavailableError, compile_filter
from tidegate.compute.workspace import Workspace
from tidegate.errors import ServiceUnavailableError

__all__ = ["Limits", "RunOutcome", "Sandbox", "SandboxOptions", "SandboxUnavailableError",
           "limits_for"]

logger = logging.getLogger(__name__)

_SYSTEM_DIRS: Final = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc entries the runtimes read (dynamic loader, alternatives links, TLS roots, DNS).
# Not /etc/passwd, /etc/shadow or anything else of the host's configuration.
_ETC_FILES: Final = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf",
                     "/etc/ld.so.conf.d", "/etc/localtime", "/etc/mime.types",
                     "/etc/ssl", "/etc/ca-certificates", "/etc/nsswitch.conf", "/etc/hosts")
_NETWORK_ETC: Final = ("/etc/resolv.conf", "/etc/gai.conf")
_SANDBOX_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
_SANDBOX_TMP: Final = "/tmp"  # noqa: S108 - the sandbox's own private, size-capped tmpfs
_SANDBOX_SHM: Final = "/dev/shm"  # noqa: S108 - likewise
_MEMORY_MARKERS: Final = ("MemoryError", "out of memory", "Cannot allocate memory",
                          "std::bad_alloc", "Failed to reserve virtual memory",
                          "Fatal process OOM")
_PROCESS_MARKERS: Final = ("Resource temporarily unavailable", "spawn EAGAIN")
_MIB: Final = 1024 * 1024
# Arguments: the cgroup.procs files, "--", the command. Nothing here is interpolated.
_JOIN_CGROUPS: Final = ('while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; '
                        'shift; exec "$@"')


class SandboxUnavailableError(ServiceUnavailableError):
    """No working sandbox: jobs are refused (unless the unsafe setting is on)."""

    code = "sandbox_unavailable"


@dataclass(frozen=True)
class SandboxOptions:
    """How jobs are isolated (from settings; tests use small values).

    ``cpu_time_factor``: CPU seconds allowed per second of wall time per CPU of the
    environment. ``uid_pool_size`` uids starting at ``sandbox_uid`` are used when
    Tidegate runs as root (one per running job, so process limits are per job).
    ``cgroups``: bound memory and processes per job with a cgroup when available
    (``cgroup_parent``: where to create them, default Tidegate's own cgroup); False
    keeps the per-process rlimits. ``max_output_files``: outputs listed per job.
    ``seccomp``: load :mod:`tidegate.compute.seccomp`'s filter when libseccomp works.
    """

    bwrap: str = "bwrap"
    unsafe_no_sandbox: bool = False
    sandbox_uid: int = 61000
    uid_pool_size: int = 1024
    max_processes: int = 64
    max_open_files: int = 256
    tmp_bytes: int = 64 * _MIB
    cpu_time_factor: float = 1.0
    poll_interval: float = 0.2
    cgroups: bool = True
    cgroup_parent: str | None = None
    max_output_files: int = 256
    seccomp: bool = True


@dataclass(frozen=True)
class Limits:
    """What one job may use; exceeding any of them ends the job."""

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int
    disk_bytes: int
    max_processes: int
    max_open_files: int
    tmp_bytes: int
    cpus: int = 1
    """CPUs the job may keep busy at once (with a cgroup cpu controller)."""


def limits_for(env: Environment, max_duration: float, options: SandboxOptions) -> Limits:
    """The limits of a job in ``env`` allowed to run ``max_duration`` seconds."""
    wall = max(1.0, min(float(max_duration), float(env.max_job_duration)))
    cpu = max(1, math.ceil(wall * max(1, env.cpu_number) * options.cpu_time_factor))
    return Limits(wall_seconds=wall, cpu_seconds=cpu,
                  memory_bytes=max(16 * _MIB, int(env.ram_gb * 1024 * _MIB)),
                  disk_bytes=max(1, int(env.disk_gb * 1024 * _MIB)),
                  max_processes=options.max_processes, max_open_files=options.max_open_files,
                  tmp_bytes=options.tmp_bytes, cpus=max(1, env.cpu_number))


@dataclass(frozen=True)
class _Killed:
    """What the job's cgroup saw: an OOM kill, a fork refused at the process limit."""

    memory: bool
    processes: bool


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``limit``: "time", "cpu", "memory", "disk", "processes" or None."""

    exit_code: int | None
    limit: str | None
    stopped: bool
    detail: str


def _open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)


def _memfd(content: bytes) -> int:
    """An anonymous file holding ``content``, positioned at its start."""
    fd = os.memfd_create("tidegate-seccomp", os.MFD_CLOEXEC)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _log_tail(path: Path, size: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _user_tasks(uid: int) -> int:
    """Tasks (threads) of ``uid``: RLIMIT_NPROC counts them all, not only the job's."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(entry.path).st_uid == uid:
                count += len(os.listdir(os.path.join(entry.path, "task")))
    return count


class Sandbox:
    """Builds and runs sandboxed commands; call :meth:`probe` once before use."""

    def __init__(self, options: SandboxOptions | None = None,
                 lock_dir: Path | None = None) -> None:
        """``lock_dir``: where uids are claimed (``flock``) so that Tidegate processes
        sharing it never give one uid to two running jobs."""
        self.options = options or SandboxOptions()
        self.root_mode = os.geteuid() == 0
        self._lock_dir = lock_dir
        self._uids_in_use: dict[int, int | None] = {}  # uid -> lock file descriptor
        self._tools: dict[str, str] = {}
        self.unavailable: str | None = "not probed yet"
        self.cgroups: CgroupLayout | None = None
        self.cgroup_reason = "not probed yet"
        """Why jobs have no cgroup (rlimits then), or "" when they have one."""
        self._filters: dict[bool, bytes] = {}  # allow_network -> seccomp BPF program
        self.seccomp_reason = "not probed yet"
        """Why jobs run without a seccomp filter, or "" when they have one."""

    @property
    def unsafe(self) -> bool:
        return self.options.unsafe_no_sandbox

    def algorithm_path(self, workspace: Workspace) -> str:
        """``$ALGO`` as the job sees it (a host path only without a sandbox)."""
        if self.unsafe:
            return str(workspace.transformations / "algorithm")
        return "/data/transformations/algorithm"

    async def probe(self, scratch: Path) -> str | None:
        """Check that a sandboxed command really runs; the reason if not (else None)."""
        self.unavailable = self._find_tools()
        if self.unavailable is None and self.options.cgroups:
            found = await asyncio.to_thread(discover, self.options.cgroup_parent)
            self.cgroups = found if isinstance(found, CgroupLayout) else None
            self.cgroup_reason = found if isinstance(found, str) else ""
            if self.cgroups is not None:
                # Jobs of a Tidegate killed with -9 died with it; their cgroups did not.
                await asyncio.to_thread(sweep, self.cgroups)
        elif not self.options.cgroups:
            self.cgroup_reason = "cgroups are disabled (TIDEGATE_COMPUTE_CGROUPS=false)"
        self._filters, self.seccomp_reason = {}, "no sandbox"
        if self.unavailable is None and not self.unsafe:
            self.seccomp_reason = "seccomp is disabled (TIDEGATE_COMPUTE_SECCOMP=false)"
            if self.options.seccomp:
                try:
                    self._filters = {net: compile_filter(allow_network=net)
                                     for net in (False, True)}
                    self.seccomp_reason = ""
                except SeccompUnavailableError as exc:
                    self.seccomp_reason = str(exc)
        if self.unavailable is not None or self.unsafe:
            return self.unavailable
        workspace = Workspace(scratch)
        await asyncio.to_thread(workspace.create)
        limits = Limits(wall_seconds=20, cpu_seconds=10, memory_bytes=512 * _MIB,
                        disk_bytes=_MIB, max_processes=self.options.max_processes,
                        max_open_files=64, tmp_bytes=_MIB)
        true = shutil.which("true", path="/usr/bin:/bin") or "/usr/bin/true"
        try:
            outcome = await self.run([true], {}, workspace, limits, allow_network=False)
        except OSError as exc:
            self.unavailable = f"the sandbox could not start ({exc.strerror})"
        else:
            if outcome.exit_code != 0:
                first = _log_tail(workspace.log_file).strip().splitlines()
                self.unavailable = "bubblewrap failed: " + (first[0] if first
                                                            else outcome.detail)
        await asyncio.to_thread(workspace.remove)
        return self.unavailable

    def _find_tools(self) -> str | None:
        needed = {"prlimit": "prlimit", "sh": "sh"}
        if not self.unsafe:
            needed["bwrap"] = self.options.bwrap
            if self.root_mode:
                needed["setpriv"] = "setpriv"
        for name, program in needed.items():
            found = shutil.which(program)
            if found is None:
                return f"{name} is not installed (or not on PATH)"
            self._tools[name] = os.path.realpath(found)
        return None

    def _binds(self, allow_network: bool, extra_paths: Sequence[str]) -> list[str]:
        args: list[str] = []
        made: set[str] = set()

        def parents(path: str) -> None:
            # bwrap creates missing parents 0700 when run as root: the job's uid could
            # not traverse them. Create them 0755 first (they exist only in the sandbox).
            parent = os.path.dirname(path)
            if parent in ("/", "") or parent in made:
                return
            parents(parent)
            made.add(parent)
            args.extend(["--perms", "0755", "--dir", parent])

        for path in _SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in _ETC_FILES + (_NETWORK_ETC if allow_network else ()):
            if os.path.lexists(path):
                parents(path)
                args += ["--ro-bind-try", path, path]
        for path in extra_paths:
            parents(path)
            args += ["--ro-bind", path, path]
        return args

    def command(self, argv: Sequence[str], env: Mapping[str, str], workspace: Workspace,
                limits: Limits, *, allow_network: bool, uid: int | None,
                extra_paths: Sequence[str] = (), cgroup: JobCgroup | None = None,
                seccomp_fd: int | None = None) -> list[str]:
        """The full command line: joining ``cgroup`` (if any), prlimit, then bwrap
        (unless unsafe), then ``argv``. With a cgroup, memory and processes are its
        limits, not the per-process RLIMIT_AS and RLIMIT_NPROC. ``seccomp_fd``: a
        descriptor (inherited by bwrap) holding the filter bwrap loads before ``argv``."""
        cmd: list[str] = []
        if cgroup is not None:
            # The shell writes its own pid into the job's cgroups, then execs: every
            # process of the job is born inside them (no window to escape the limits).
            cmd += [self._tools["sh"], "-c", _JOIN_CGROUPS, "tidegate-cgroup",
                    *cgroup.procs_files, "--"]
        cmd += [self._tools["prlimit"],
                f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
                f"--fsize={limits.disk_bytes}", f"--nofile={limits.max_open_files}",
                "--core=0"]
        if cgroup is None:
            nproc = limits.max_processes
            if not self.root_mode:
                nproc += _user_tasks(os.getuid())  # the provider's own tasks count too
            cmd += [f"--as={limits.memory_bytes}", f"--nproc={nproc}"]
        cmd.append("--")
        if self.unsafe:
            return [*cmd, *argv]
        cmd += [self._tools["bwrap"], "--die-with-parent", "--new-session", "--clearenv"]
        if seccomp_fd is not None:
            cmd += ["--seccomp", str(seccomp_fd)]
        if self.root_mode:
            cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
            cmd += [] if allow_network else ["--unshare-net"]
        else:
            cmd += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
            cmd += ["--share-net"] if allow_network else []
        cmd += self._binds(allow_network, extra_paths)
        # /dev is a tmpfs of bwrap's with no size: read-only, with a size-capped /dev/shm
        # (POSIX semaphores and shared memory, e.g. multiprocessing), else a job could
        # fill the host's RAM through it (without root, /dev is the job's own).
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", _SANDBOX_SHM,
                "--remount-ro", "/dev",
                "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", _SANDBOX_TMP,
                "--perms", "0755", "--dir", "/data",
                "--ro-bind", str(workspace.inputs), "/data/inputs",
                "--ro-bind", str(workspace.ddos), "/data/ddos",
                "--ro-bind", str(workspace.transformations), "/data/transformations",
                "--bind", str(workspace.outputs), "/data/outputs",
                "--bind", str(workspace.logs), "/data/logs",
                "--remount-ro", "/", "--chdir", "/data", "--hostname", "tidegate-job"]
        for name, value in {"PATH": _SANDBOX_PATH, "HOME": _SANDBOX_TMP, "TMPDIR": _SANDBOX_TMP,
                            "LANG": "C.UTF-8", **env}.items():
            cmd += ["--setenv", name, value]
        cmd.append("--")
        if self.root_mode and uid is not None:
            # Root keeps no power inside: a real unprivileged uid, no capabilities at all,
            # no way back (no_new_privs), so RLIMIT_NPROC applies (root is exempt from it).
            cmd += [self._tools["setpriv"], f"--reuid={uid}", f"--regid={uid}",
                    "--clear-groups", "--bounding-set=-all", "--inh-caps=-all",
                    "--no-new-privs", "--"]
        return [*cmd, *argv]

    def _take_uid(self) -> int | None:
        if not self.root_mode or self.unsafe:
            return None
        if self._lock_dir is not None:
            self._lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(self.options.sandbox_uid,
                         self.options.sandbox_uid + self.options.uid_pool_size):
            if uid in self._uids_in_use:
                continue
            fd = None
            if self._lock_dir is not None:
                fd = os.open(self._lock_dir / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue  # another Tidegate process runs a job as this uid
            self._uids_in_use[uid] = fd
            return uid
        raise SandboxUnavailableError("No free sandbox uid: too many jobs are running.")

    def _release_uid(self, uid: int) -> None:
        fd = self._uids_in_use.pop(uid, None)
        if fd is not None:
            os.close(fd)  # releases the flock

    async def run(self, argv: Sequence[str], env: Mapping[str, str], workspace: Workspace,
                  limits: Limits, *, allow_network: bool, extra_paths: Sequence[str] = (),
                  should_stop: Callable[[], Awaitable[bool]] | None = None) -> RunOutcome:
        """Run ``argv`` in the sandbox until it exits, a limit is hit or it is stopped.

        The process group is always killed and reaped before this returns or raises
        (also on cancellation). stdout and stderr go to ``workspace.log_file``.
        """
        if self.unavailable is not None and not self.unsafe:
            raise SandboxUnavailableError(f"No working sandbox: {self.unavailable}.")
        uid = self._take_uid()
        cgroup: JobCgroup | None = None
        try:
            workspace.grant(uid)
            if self.cgroups is not None:
                cgroup = JobCgroup(self.cgroups, f"tidegate-job-{uuid.uuid4().hex}")
                try:
                    await asyncio.to_thread(cgroup.create, limits.memory_bytes,
                                            limits.max_processes, limits.cpus)
                except OSError as exc:  # worked at the probe: run on rlimits, say why
                    logger.warning("compute job runs without a cgroup: %s", exc.strerror)
                    await asyncio.to_thread(cgroup.remove)
                    cgroup = None
            program = self._filters.get(allow_network) if not self.unsafe else None
            seccomp_fd = _memfd(program) if program is not None else None
            cmd = self.command(argv, env, workspace, limits, allow_network=allow_network,
                               uid=uid, extra_paths=extra_paths, cgroup=cgroup,
                               seccomp_fd=seccomp_fd)
            log_fd = _open_log(workspace.log_file)
            try:
                outer_env = ({"PATH": _SANDBOX_PATH, "LANG": "C.UTF-8", **env}
                             if self.unsafe else {"PATH": _SANDBOX_PATH})
                proc = await asyncio.create_subprocess_exec(
                    *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=log_fd,
                    stderr=asyncio.subprocess.STDOUT, env=outer_env, start_new_session=True,
                    cwd=str(workspace.data) if self.unsafe else "/",
                    pass_fds=() if seccomp_fd is None else (seccomp_fd,))
            finally:
                os.close(log_fd)
                if seccomp_fd is not None:
                    os.close(seccomp_fd)
            reason = await self._watch(proc, workspace, limits, should_stop)
            killed = _Killed(memory=cgroup is not None and cgroup.memory_killed(),
                             processes=cgroup is not None and cgroup.processes_refused())
        finally:
            if cgroup is not None:
                # Whatever of the job is left (it left the process group) dies here.
                await asyncio.shield(asyncio.to_thread(cgroup.remove))
            if uid is not None:
                self._release_uid(uid)
        return await asyncio.to_thread(self._outcome, proc.returncode, reason, workspace,
                                       limits, killed)

    async def _watch(self, proc: asyncio.subprocess.Process, workspace: Workspace,
                     limits: Limits, should_stop: Callable[[], Awaitable[bool]] | None
                     ) -> str | None:
        """Wait for the process; kill its group on a limit, a stop or cancellation."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiter = asyncio.ensure_future(proc.wait())
        reason: str | None = None
        used, next_measure = 0, started + 5 * self.options.poll_interval
        try:
            while reason is None:
                done, _ = await asyncio.wait({waiter}, timeout=self.options.poll_interval)
                if done:
                    return None
                now = loop.time()
                if now - started > limits.wall_seconds:
                    reason = "time"
                elif should_stop is not None and await should_stop():
                    reason = "stopped"
                elif now >= next_measure:
                    used = await asyncio.to_thread(workspace.usage, limits.disk_bytes)
                    if used > limits.disk_bytes:
                        reason = "disk"
                    # Every ~1 s, every tick once past half the quota (a fast writer
                    # overshoots by what it writes in one tick; each file is capped by
                    # RLIMIT_FSIZE anyway); never more than a third of the time spent
                    # measuring (a job of many small files makes a measure slow).
                    spent = loop.time() - now
                    interval = (1 if used > limits.disk_bytes // 2 else 5)
                    next_measure = loop.time() + max(interval * self.options.poll_interval,
                                                     2 * spent)
            return reason
        finally:
            if not waiter.done():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                # Reap even when cancelled: never leave a zombie or a running sandbox.
                await asyncio.shield(waiter)

    def _outcome(self, returncode: int | None, reason: str | None, workspace: Workspace,
                 limits: Limits, killed: _Killed) -> RunOutcome:
        code = returncode if returncode is not None else -1
        if reason == "stopped":
            return RunOutcome(None, None, True, "Job stopped")
        sig = -code if code < 0 else code - 128 if code > 128 else 0
        limit = reason
        if limit is None and sig == signal.SIGXCPU:
            limit = "cpu"
        # At the quota counts: a file stopped at RLIMIT_FSIZE (= the quota) ends there,
        # and Python ignores SIGXFSZ (the write fails with EFBIG instead).
        if limit is None and (sig == signal.SIGXFSZ
                              or workspace.usage(limits.disk_bytes) >= limits.disk_bytes):
            limit = "disk"
        if limit is None and killed.memory:
            limit = "memory"  # the kernel killed a process of the job (cgroup OOM)
        if limit is None and killed.processes and code != 0:
            limit = "processes"  # a fork was refused and the job failed
        if limit is None and code != 0:
            tail = _log_tail(workspace.log_file)
            if any(marker in tail for marker in _MEMORY_MARKERS):
                limit = "memory"
            elif any(marker in tail for marker in _PROCESS_MARKERS):
                limit = "processes"
        exit_code = None if reason is not None else code
        return RunOutcome(exit_code, limit, False, _describe(limit, exit_code, limits))


def _describe(limit: str | None, exit_code: int | None, limits: Limits) -> str:
    texts = {
        "time": f"Time limit exceeded: the job ran longer than {limits.wall_seconds:g} s "
                "and was stopped.",
        "cpu": f"CPU time limit exceeded ({limits.cpu_seconds} s of CPU time).",
        "memory": f"Memory limit exceeded ({limits.memory_bytes // _MIB} MB).",
        "disk": f"Disk limit exceeded: /data/outputs, /data/logs and the log may total "
                f"{limits.disk_bytes} bytes.",
        "processes": f"Process limit reached ({limits.max_processes} processes).",
    }
    if limit is not None:
        # Limits found in the log (not by a signal): the exit code tells what happened.
        shown = limit in ("memory", "processes") and exit_code not in (None, 0)
        suffix = f" Algorithm exit code {exit_code}." if shown else ""
        return texts[limit] + suffix
    return "" if exit_code == 0 else f"Algorithm exited with code {exit_code}."
