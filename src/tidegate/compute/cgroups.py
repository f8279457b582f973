"""Per-job control groups: memory (swap included), processes and CPUs for the whole job.

RLIMIT_AS and RLIMIT_NPROC bound each process (and each uid), so a job of N processes
could use N × ``ramGB``. A cgroup bounds the job's processes together, counts its
RAM-backed ``/tmp``, and tells afterwards whether the kernel killed one of them for
memory (``oom_kill``) or refused a fork (``pids.events``). Where the ``cpu`` controller
is there too (optional), the job gets ``cpuNumber`` CPUs' worth of time at most, however
many processes it runs (RLIMIT_CPU only bounds each process).

Where: cgroup v2 when the unified hierarchy has the ``memory`` and ``pids`` controllers
and the parent can hand them to children; else cgroup v1 (one hierarchy per controller,
as on hybrid hosts). The parent is Tidegate's own cgroup in each hierarchy unless
``parent`` names another (a path inside the hierarchy, e.g. one delegated to Tidegate's
user by systemd). Anything missing or not writable: :func:`discover` says why and the
sandbox falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["CgroupLayout", "JobCgroup", "discover", "sweep"]

_CONTROLLERS: Final = ("memory", "pids")
_PREFIXES: Final = ("tidegate-job-", "tidegate-probe-")


@dataclass(frozen=True)
class CgroupLayout:
    """Where job cgroups are created: the parent directory of each controller.

    With v2 both are the same directory; with v1 each controller has its own hierarchy.
    """

    version: int
    memory: Path
    pids: Path
    cpu: Path | None = None
    """None: no cpu controller (the CPU rate is not limited; RLIMIT_CPU still is)."""

    def describe(self) -> str:
        """A one-line summary for the start-up log."""
        cpu = "" if self.cpu is not None else ", no cpu controller"
        where = (str(self.memory) if self.version == 2
                 else f"memory {self.memory}, pids {self.pids}, cpu {self.cpu}")
        return f"cgroup v{self.version} ({where}{cpu})"


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """``(fstype, mount point, root inside the hierarchy, super options)`` of cgroupfs."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                # Mount points escape spaces as \040; cgroup mounts never have them.
                found.append((tail[0], fields[4], fields[3], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and ``""`` -> its v2 path."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _inside(mount_point: str, mount_root: str, path: str) -> Path:
    relative = os.path.relpath(path, mount_root) if mount_root != "/" else path.lstrip("/")
    if relative.startswith(".."):
        raise OSError("Tidegate's cgroup is outside the mounted hierarchy")
    return Path(mount_point, relative).resolve()


def _v2(mounts: list[tuple[str, str, str, set[str]]], own: dict[str, str],
        parent: str | None) -> CgroupLayout | str:
    v2 = [m for m in mounts if m[0] == "cgroup2"]
    if not v2 or "" not in own:
        return "no cgroup v2 hierarchy"
    _, point, root, _ = v2[0]
    directory = _inside(point, root, parent if parent is not None else own[""])
    available = set((directory / "cgroup.controllers").read_text().split())
    missing = [c for c in _CONTROLLERS if c not in available]
    if missing:
        return f"cgroup v2 lacks the {', '.join(missing)} controller(s) at {directory}"
    enabled = set((directory / "cgroup.subtree_control").read_text().split())
    wanted = [c for c in _CONTROLLERS if c not in enabled]
    if wanted:
        try:
            (directory / "cgroup.subtree_control").write_text(
                " ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            # EBUSY: the parent holds processes (Tidegate itself), which v2 forbids for
            # a cgroup handing out controllers; the operator delegates an empty one.
            return (f"cannot enable {', '.join(wanted)} for children of {directory} "
                    f"({exc.strerror}); set TIDEGATE_COMPUTE_CGROUP_PARENT to a delegated "
                    "cgroup without processes")
    cpu = None
    if "cpu" in available:
        try:
            if "cpu" not in enabled:
                (directory / "cgroup.subtree_control").write_text("+cpu")
            cpu = directory
        except OSError:
            pass  # optional: jobs are then not rate-limited (RLIMIT_CPU still applies)
    return CgroupLayout(2, directory, directory, cpu)


def _v1(mounts: list[tuple[str, str, str, set[str]]], own: dict[str, str],
        parent: str | None) -> CgroupLayout | str:
    dirs: dict[str, Path] = {}
    for controller in _CONTROLLERS:
        mount = next((m for m in mounts if m[0] == "cgroup" and controller in m[3]), None)
        if mount is None or controller not in own:
            return f"no cgroup v1 {controller} hierarchy"
        _, point, root, _ = mount
        dirs[controller] = _inside(point, root,
                                   parent if parent is not None else own[controller])
    cpu_mount = next((m for m in mounts if m[0] == "cgroup" and "cpu" in m[3]), None)
    cpu = (_inside(cpu_mount[1], cpu_mount[2], parent if parent is not None else own["cpu"])
           if cpu_mount is not None and "cpu" in own else None)
    return CgroupLayout(1, dirs["memory"], dirs["pids"], cpu)


def discover(parent: str | None = None) -> CgroupLayout | str:
    """The layout job cgroups can use here, or why there is none.

    A trial cgroup is created, limited and removed, so a layout returned is writable.
    """
    try:
        mounts, own = _mounts(), _own_paths()
        found = _v2(mounts, own, parent)
        if isinstance(found, str):
            v1 = _v1(mounts, own, parent)
            if isinstance(v1, str):
                return f"{found}; {v1}"
            found = v1
        trial = JobCgroup(found, f"tidegate-probe-{uuid.uuid4().hex[:12]}")
        try:
            trial.create(64 * 1024 * 1024, 16, 1)
        finally:
            trial.remove()
    except (OSError, ValueError) as exc:
        return f"cgroups are not usable ({getattr(exc, 'strerror', None) or exc})"
    return found


def sweep(layout: CgroupLayout, older_than: float = 60.0) -> list[str]:
    """Remove job cgroups a dead Tidegate left behind; the names removed.

    Only empty cgroups can be removed (the kernel refuses the others), so a live job of
    another Tidegate process on the same parent is safe; ``older_than`` (seconds) spares
    one created a moment ago that its job has not joined yet.
    """
    removed = []
    parents = [layout.memory, layout.pids] + ([layout.cpu] if layout.cpu is not None else [])
    for parent in dict.fromkeys(parents):
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                if not entry.name.startswith(_PREFIXES):
                    continue
                with contextlib.suppress(OSError):
                    if time.time() - entry.stat().st_mtime > older_than:
                        entry.rmdir()
                        removed.append(entry.name)
    return removed


class JobCgroup:
    """One job's cgroup (one directory per hierarchy): create, join, inspect, remove."""

    def __init__(self, layout: CgroupLayout, name: str) -> None:
        self.layout = layout
        self.memory = layout.memory / name
        self.pids = layout.pids / name
        self.cpu = layout.cpu / name if layout.cpu is not None else None
        self._dirs = [self.memory] if layout.version == 2 else [self.memory, self.pids]
        if layout.version == 1 and self.cpu is not None:
            self._dirs.append(self.cpu)

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join the job."""
        return [str(d / "cgroup.procs") for d in self._dirs]

    def create(self, memory_bytes: int, max_processes: int, cpus: int) -> None:
        """Create the directories and set the limits (swap counts as memory; ``cpus``
        CPUs' worth of time per scheduling period when there is a cpu controller)."""
        for directory in self._dirs:
            directory.mkdir(mode=0o755)
        if self.layout.version == 2:
            (self.memory / "memory.max").write_text(str(memory_bytes))
            swap = self.memory / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
            # On OOM the kernel kills the whole job, not one process of it.
            with contextlib.suppress(OSError):
                (self.memory / "memory.oom.group").write_text("1")
        else:
            (self.memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            memsw = self.memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # only with swap accounting; else swap is not limited
                memsw.write_text(str(memory_bytes))
        (self.pids / "pids.max").write_text(str(max_processes))
        if self.cpu is not None:
            period = 100_000  # µs, the kernel's default
            try:
                if self.layout.version == 2:
                    (self.cpu / "cpu.max").write_text(f"{cpus * period} {period}")
                else:
                    (self.cpu / "cpu.cfs_period_us").write_text(str(period))
                    (self.cpu / "cpu.cfs_quota_us").write_text(str(cpus * period))
            except OSError:
                # Optional (e.g. a parent quota below ``cpus``): memory and processes
                # stay bounded; the CPU rate is then only bounded per process.
                if self.layout.version == 1:
                    self._dirs.remove(self.cpu)
                    with contextlib.suppress(OSError):
                        self.cpu.rmdir()
                self.cpu = None

    def _counter(self, path: Path, key: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        return 0

    def memory_killed(self) -> bool:
        """True if the kernel killed a process of the job for exceeding its memory."""
        events = (self.memory / "memory.events" if self.layout.version == 2
                  else self.memory / "memory.oom_control")
        return self._counter(events, "oom_kill") > 0

    def processes_refused(self) -> bool:
        """True if a fork of the job was refused because of the process limit."""
        return self._counter(self.pids / "pids.events", "max") > 0

    def _members(self) -> list[int]:
        pids: set[int] = set()
        for directory in self._dirs:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return sorted(pids)

    def kill(self) -> None:
        """SIGKILL every process of the job (also ones that left its process group)."""
        if self.layout.version == 2 and (self.memory / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.memory / "cgroup.kill").write_text("1")
                return
        # v1: no atomic kill; repeat while a forking process adds members (bounded by
        # pids.max, so a few rounds suffice).
        for _ in range(50):
            members = self._members()
            if not members:
                return
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left and remove the directories (empty cgroups only go away)."""
        deadline = time.monotonic() + timeout
        for directory in self._dirs:
            while directory.exists():
                self.kill()
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)  # killed processes are still exiting
