"""Several Docker daemons behind one Docker engine: each host's capacity, health, disk,
and where the next job goes.

A :class:`DockerHost` is one daemon (the client the composition root built) with its
capacity: CPUs and memory configured, else the daemon's own ``/info`` (``NCPU``,
``MemTotal``). A job holds its environment's ``cpuNumber`` and ``ramGB`` on the host it
runs on until it ends; :meth:`HostPool.place` picks, among the hosts that answer, may
take the environment's jobs (``dockerHost`` pins an environment to one) and have room,
the least loaded one. No host with room: the job waits in status 1, as for ``maxJobs``.

What other Tidegate processes run there counts too: each job container carries its
CPUs and memory as labels (:func:`held_labels`), and before placing a job the running
job containers of the candidate hosts that another process (instance) started are
summed. Two processes placing at the same instant may both take the last room.

Capacity is enforced when several hosts are configured (``TIDEGATE_DOCKER_HOSTS``); a
lone ``DOCKER_HOST`` keeps the single-daemon behaviour (only ``maxJobs`` bounds the jobs).

Health: every host is probed (``version``, then ``info``) every ``probe_interval``
seconds; one that does not answer is *down*: its :attr:`DockerHost.lost` event is set
(the engine ends its running jobs with :data:`HOST_LOST`), no job is placed on it, and it
is retried after a backoff (``probe_interval`` doubling per failure, at most
``max_backoff``). When it answers again it is used again. A host's address is never
logged or shown: it may name a private machine; logs and errors say ``Docker host N``.

Disk: for a daemon on a local socket whose data root (``/info`` ``DockerRootDir``) this
process can read, a host whose data root keeps less than the free-space floor gets no
job (:meth:`HostPool.disk_full`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiodocker
from aiodocker.exceptions import DockerError

from tidegate.compute.engines.container_spec import INSTANCE_LABEL, JOB_LABEL
from tidegate.compute.engines.queueing import InsufficientDiskError, cancel
from tidegate.compute.environments import Environment

__all__ = ["CPUS_LABEL", "HOST_LOST", "HOST_LOST_TEXT", "MEMORY_LABEL", "DockerHost",
           "HostLostError", "HostPool", "held_labels", "host_url"]

logger = logging.getLogger(__name__)

HOST_LOST: Final = ("The Docker host running the job stopped answering: the job was ended. "
                    "Outputs written before are results.")
"""The ``detail`` of a job whose host went away (status 70)."""
HOST_LOST_TEXT: Final = "Job failed: Docker host unreachable"
"""The ``statusText`` of such a job."""
CPUS_LABEL: Final = "org.tidegate.cpus"
MEMORY_LABEL: Final = "org.tidegate.memory"
UNPROBED: Final = "not probed yet"
_GIB: Final = 1024**3


class HostLostError(Exception):
    """Raised by a job's work on a host found not answering (:meth:`HostPool.ensure_up`)."""


def host_url(text: str) -> str:
    """A daemon address as the settings spell it: a bare ``/path`` is ``unix:///path``."""
    text = text.strip()
    return f"unix://{text}" if text.startswith("/") else text.rstrip("/")


@dataclass(eq=False)
class DockerHost:
    """One daemon and its state. ``cpus`` / ``memory_bytes``: configured capacity
    (None: the daemon's ``/info``). ``url`` is matched against environments'
    ``dockerHost`` and never shown."""

    docker: aiodocker.Docker
    url: str = ""
    name: str = "the Docker daemon"
    cpus: float | None = None
    memory_bytes: int | None = None
    capacity_cpus: float | None = field(default=None, init=False)
    capacity_memory: int | None = field(default=None, init=False)
    root_dir: Path | None = field(default=None, init=False)
    """The daemon's data root when this process can read it (a local daemon)."""
    reason: str | None = field(default=UNPROBED, init=False)
    """Why the host is down (None: it answers)."""
    failures: int = field(default=0, init=False)
    next_probe: float = field(default=0.0, init=False)
    lost: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    """Set when the host goes down; a new event once it is back."""
    held: dict[str, tuple[float, int]] = field(default_factory=dict, init=False)
    """Job id -> (CPUs, memory bytes) of the jobs this process placed here."""
    elsewhere: tuple[float, float] = field(default=(0.0, 0.0), init=False)
    """CPUs and memory bytes the running jobs of other Tidegate processes hold here."""

    @property
    def up(self) -> bool:
        return self.reason is None

    @property
    def local(self) -> bool:
        return self.url.startswith("unix://") or not self.url

    def _capacity(self) -> tuple[float, float]:
        """CPUs and memory bytes (infinite where unknown)."""
        return (self.capacity_cpus if self.capacity_cpus is not None else float("inf"),
                float(self.capacity_memory) if self.capacity_memory is not None
                else float("inf"))

    def _held(self) -> tuple[float, float]:
        return (sum(c for c, _ in self.held.values()) + self.elsewhere[0],
                float(sum(m for _, m in self.held.values())) + self.elsewhere[1])

    def fits(self, cpus: float, memory: int, *, empty: bool = False) -> bool:
        """Room for a job of ``cpus`` and ``memory`` now (``empty``: on the idle host)."""
        (all_cpus, all_memory), (held_cpus, held_memory) = self._capacity(), self._held()
        if empty:
            held_cpus = held_memory = 0.0
        return cpus <= all_cpus - held_cpus + 1e-9 and memory <= all_memory - held_memory

    def load(self) -> float:
        """The larger of the CPU and memory shares held (0 where capacity is unknown)."""
        (all_cpus, all_memory), (held_cpus, held_memory) = self._capacity(), self._held()
        return max(held_cpus / all_cpus if all_cpus else 0.0,
                   held_memory / all_memory if all_memory else 0.0)


def _needs(env: Environment) -> tuple[float, int]:
    return float(env.cpu_number), int(env.ram_gb * _GIB)


def held_labels(env: Environment) -> dict[str, str]:
    """The labels a job container of ``env`` carries: what it holds of its host."""
    cpus, memory = _needs(env)
    return {CPUS_LABEL: f"{cpus:g}", MEMORY_LABEL: str(memory)}


class HostPool:
    """The hosts of one Docker engine (see the module docstring).

    ``capacity``: place by CPUs and memory (several hosts); else any host that answers
    takes any job. ``min_free_bytes``: the data-root floor of local daemons.
    ``instance``: this process's instance label (its own containers are in ``held``).
    """

    def __init__(self, hosts: Sequence[DockerHost], *, capacity: bool,
                 probe_interval: float = 15.0, max_backoff: float = 60.0,
                 min_free_bytes: int = 0, instance: str = "") -> None:
        if not hosts:
            raise ValueError("a Docker engine needs at least one host")
        self.hosts = list(hosts)
        self.capacity = capacity
        self._interval = probe_interval
        self._max_backoff = max(max_backoff, probe_interval)
        self._min_free = min_free_bytes
        self._instance = instance
        self._changed = asyncio.Condition()
        self._placing = asyncio.Lock()  # one placement at a time: no two take one room

    # --- health ------------------------------------------------------------------------
    def up(self) -> list[DockerHost]:
        return [h for h in self.hosts if h.up]

    def unavailable_reason(self) -> str | None:
        """Why no job can run at all (no host answers), else None."""
        if any(h.up for h in self.hosts):
            return None
        if len(self.hosts) == 1:
            return self.hosts[0].reason
        return "no Docker host answers"

    async def probe(self, host: DockerHost) -> bool:
        """Ask ``host`` for its version and resources now; True if it answers."""
        try:
            await asyncio.wait_for(host.docker.version(), 10)
            info = dict(await asyncio.wait_for(host.docker.system.info(), 10))
        except (DockerError, OSError, ValueError, TimeoutError) as exc:
            await self._went_down(host, f"{host.name} does not answer ({type(exc).__name__})")
            return False
        host.capacity_cpus = host.cpus if host.cpus is not None else _positive(info.get("NCPU"))
        memory = _positive(info.get("MemTotal"))
        host.capacity_memory = (host.memory_bytes if host.memory_bytes is not None
                                else int(memory) if memory is not None else None)
        host.root_dir = await asyncio.to_thread(_readable_root, host, info.get("DockerRootDir"))
        host.next_probe = time.monotonic() + self._interval
        if host.reason is not None:
            if host.reason != UNPROBED:
                logger.warning("compute: %s answers again; jobs are placed on it",
                               host.name)
            host.reason, host.failures = None, 0
            host.lost = asyncio.Event()
            await self._notify()
        return True

    async def _went_down(self, host: DockerHost, reason: str) -> None:
        was = host.reason
        host.failures += 1
        backoff = min(self._interval * 2 ** (host.failures - 1), self._max_backoff)
        host.next_probe = time.monotonic() + backoff
        host.reason = reason
        host.lost.set()
        if was is None or was == UNPROBED:
            # The daemon's address stays out of the log (it may name a private host).
            logger.warning("compute: %s; its running jobs are ended and no job is placed "
                           "on it; retried in %.0f s, then with a growing backoff",
                           reason, backoff)

    async def check(self) -> list[DockerHost]:
        """Probe the hosts that are due (all at once); the hosts that came back."""
        now = time.monotonic()
        due = [h for h in self.hosts if now >= h.next_probe]
        was_down = {id(h) for h in due if not h.up}
        answered = await asyncio.gather(*(self.probe(h) for h in due))
        return [h for h, ok in zip(due, answered, strict=True) if ok and id(h) in was_down]

    # --- placement ---------------------------------------------------------------------
    def eligible(self, env: Environment) -> list[DockerHost]:
        """The hosts that may run ``env``'s jobs (its ``dockerHost``, else all)."""
        if env.docker_host:
            return [h for h in self.hosts if h.url == env.docker_host]
        return list(self.hosts)

    def can_run(self, env: Environment) -> bool:
        """Some host that answers could take one of ``env``'s jobs (when idle)."""
        cpus, memory = _needs(env)
        return any(h.up and (not self.capacity or h.fits(cpus, memory, empty=True))
                   for h in self.eligible(env))

    async def disk_full(self, host: DockerHost) -> bool:
        """``host``'s data root (a local daemon's, if readable) is below the floor."""
        if host.root_dir is None:
            return False
        try:
            free = (await asyncio.to_thread(shutil.disk_usage, host.root_dir)).free
        except OSError:
            return False
        return free < self._min_free

    async def check_disk(self, env: Environment) -> None:
        """Raise :class:`InsufficientDiskError` when every host that answers and may run
        ``env`` has a data root below the floor (refused before a job is accepted)."""
        hosts = [h for h in self.eligible(env) if h.up]
        if hosts and all([await self.disk_full(h) for h in hosts]):
            raise InsufficientDiskError("Compute is unavailable: the Docker daemon's disk "
                                        "is too full for another job; try again later.")

    async def place(self, job_id: str, env: Environment) -> DockerHost | None:
        """Reserve room for the job on the least loaded fitting host (None: none now)."""
        cpus, memory = _needs(env)
        async with self._placing:
            if self.capacity:
                for host in self.eligible(env):
                    if host.up:
                        await self._count_elsewhere(host)
            fitting = [h for h in self.eligible(env)
                       if h.up and (not self.capacity or h.fits(cpus, memory))]
            for host in sorted(fitting, key=lambda h: (h.load(), self.hosts.index(h))):
                if not await self.disk_full(host):
                    host.held[job_id] = (cpus, memory)
                    return host
            return None

    async def _count_elsewhere(self, host: DockerHost) -> None:
        """Sum what the running job containers of other processes hold on ``host``
        (unchanged if the daemon cannot list them now)."""
        try:
            containers = await asyncio.wait_for(host.docker.containers.list(
                filters=json.dumps({"label": [JOB_LABEL], "status": ["running"]})), 10)
        except (DockerError, OSError, TimeoutError):
            return
        cpus = memory = 0.0
        for container in containers:
            labels = container["Labels"] or {}
            if labels.get(INSTANCE_LABEL) == self._instance:
                continue  # this process's own: in ``held``
            with contextlib.suppress(ValueError):
                cpus += float(labels.get(CPUS_LABEL, 0))
                memory += float(labels.get(MEMORY_LABEL, 0))
        host.elsewhere = (cpus, memory)

    async def reserve(self, job_id: str, env: Environment,
                      stopped: Callable[[], Awaitable[bool]]) -> DockerHost | None:
        """Wait for a host with room for the job and reserve it there; None (nothing
        held) once ``stopped()`` says the job was stopped (asked about once a second)."""
        while True:
            host = await self.place(job_id, env)
            if host is not None:
                return host
            if await stopped():
                return None
            await self.wait(1.0)

    async def run_on(self, host: DockerHost, work: Coroutine[Any, Any, None]) -> bool:
        """Run a job's ``work`` on ``host``: True when it ended, False when the host went
        away meanwhile (``work`` is cancelled then: its container cannot be removed
        now, the sweep of the host does it once it is back). A failure of ``work`` is
        raised unless the host no longer answers."""
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(host.lost.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await cancel(task)
            raise
        finally:
            await cancel(gone)
        if not task.done():
            await cancel(task)
            return False
        try:
            task.result()
        except HostLostError:
            return False
        except Exception:
            if await self.probe(host):
                raise
            return False
        return True

    async def ensure_up(self, host: DockerHost) -> None:
        """After a failure on ``host``: raise :class:`HostLostError` unless it answers."""
        if not await self.probe(host):
            raise HostLostError

    async def release(self, job_id: str) -> None:
        """The job ended: its room is free again."""
        for host in self.hosts:
            host.held.pop(job_id, None)
        await self._notify()

    async def wait(self, at_most: float) -> None:
        """Until some room was freed or a host came back (at most ``at_most`` s)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), at_most)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def placed(self, job_ids: Iterable[str]) -> dict[str, str]:
        """Job id -> name of its host, for the given jobs that hold room somewhere."""
        wanted = set(job_ids)
        return {job: h.name for h in self.hosts for job in h.held if job in wanted}


def _positive(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _readable_root(host: DockerHost, root: Any) -> Path | None:
    """The data root of a local daemon when this process can stat it, else None."""
    if not host.local or not isinstance(root, str) or not root.startswith("/"):
        return None
    path = Path(root)
    try:
        shutil.disk_usage(path)
    except OSError:
        return None
    return path
