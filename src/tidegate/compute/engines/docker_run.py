"""One container's run: create, start, follow its log, enforce limits, read how it ended;
and the removal of containers a dead Tidegate left.

The log (stdout and stderr, in the order the daemon received them) is copied to the
job's ``algorithm.log`` while the container runs, so its owner can read it so far; it is
cut at ``DockerOptions.log_bytes`` with a note. Bytes that are not UTF-8 are dropped
(the daemon's log API is read as text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import aiodocker
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError

from tidegate.compute.engines.container_spec import JOB_LABEL, DockerOptions
from tidegate.compute.engines.records import INTERRUPTED, JOB_ID, JobBook
from tidegate.compute.jobs import FINISHED
from tidegate.compute.sandbox import Limits
from tidegate.compute.workspace import Workspace

__all__ = ["ContainerRun", "Ending", "remove_orphans"]

logger = logging.getLogger(__name__)

_MIB: Final = 1024 * 1024
_LOG_DRAIN: Final = 5.0  # seconds to let the log follower catch up after the exit
_CALL: Final = 15.0  # seconds for a kill or removal: a host gone silent must not hang us


@dataclass(frozen=True)
class Ending:
    """How the run ended: ``detail`` for the record ("" for a clean exit)."""

    detail: str
    stopped: bool = False
    limit: str | None = None
    exit_code: int | None = None
    unknown: bool = False
    """The daemon could not say how the container ended (its host may be gone)."""


class ContainerRun:
    """The container of one job (created by :meth:`start`, gone after :meth:`remove`)."""

    def __init__(self, docker: aiodocker.Docker, config: dict[str, Any],
                 workspace: Workspace, limits: Limits, options: DockerOptions) -> None:
        self._docker = docker
        self._config = config
        self._workspace = workspace
        self._limits = limits
        self._options = options
        self._container: DockerContainer | None = None
        self._log_task: asyncio.Task[None] | None = None
        self._killed = False

    async def start(self) -> bool:
        """Create and start the container; False (logged) if the daemon refuses."""
        # Result 0 while the job runs: the log exists before the container does.
        await asyncio.to_thread(self._workspace.log_file.touch)
        try:
            self._container = await self._docker.containers.create(self._config)
            await self._container.start()
        except DockerError as exc:
            # The daemon's message may name host paths: the status only.
            logger.warning("compute: the daemon refused to start a job container (%s)",
                           exc.status)
            return False
        self._log_task = asyncio.create_task(self._follow_log())
        return True

    async def kill(self) -> None:
        """SIGKILL the container now (a no-op once it has ended)."""
        self._killed = True
        if self._container is not None:
            with contextlib.suppress(DockerError, TimeoutError):
                await asyncio.wait_for(self._container.kill(signal="SIGKILL"), _CALL)

    async def remove(self) -> None:
        """Kill and remove the container and its anonymous volumes.

        If cancelled meanwhile, the container is still known: calling this again (the
        engine's close does) finishes the job.
        """
        if self._log_task is not None:
            self._log_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._log_task
        if self._container is not None:
            with contextlib.suppress(DockerError, TimeoutError):
                await asyncio.wait_for(self._container.delete(force=True, v=True), _CALL)
            self._container = None

    @property
    def removed(self) -> bool:
        return self._container is None

    async def watch(self, should_stop: Callable[[], Awaitable[bool]]) -> Ending:
        """Wait for the exit; kill on the wall clock, the outputs quota or a stop."""
        assert self._container is not None, "start() first"
        waiter = asyncio.ensure_future(self._container.wait())
        started = time.monotonic()
        reason: str | None = None
        ticks = 0
        try:
            while reason is None:
                done, _ = await asyncio.wait({waiter}, timeout=self._options.poll_interval)
                if done:
                    break
                ticks += 1
                if time.monotonic() - started > self._limits.wall_seconds:
                    reason = "time"
                elif self._killed or await should_stop():
                    reason = "stopped"
                elif ticks % 5 == 0 and (await asyncio.to_thread(self._workspace.outputs_size)
                                         > self._limits.disk_bytes):
                    reason = "disk"
            # A stop's kill() (from outside this loop) makes the wait return at once:
            # the exit it causes is the stop, not the algorithm's exit 137.
            if reason is None and self._killed:
                reason = "stopped"
            if reason is not None:
                await self.kill()
                with contextlib.suppress(DockerError, TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), 10)
        finally:
            if not waiter.done():
                waiter.cancel()
            elif not waiter.cancelled():
                waiter.exception()  # retrieved: a wait cut by a daemon gone is seen below
        await self._drain_log()
        read = await self._state()
        if read is None and reason is None:
            return Ending("The Docker daemon did not say how the container ended.",
                          unknown=True)
        state = read or {}
        # A kill that reached the container at its deadline before this loop saw the
        # deadline (the wait returned first) is still the time limit, not an exit 137.
        if (reason is None and time.monotonic() - started >= self._limits.wall_seconds
                and int(state.get("ExitCode", -1)) == 128 + signal.SIGKILL
                and not state.get("OOMKilled")):
            reason = "time"
        over_quota = await asyncio.to_thread(
            lambda: self._workspace.outputs_size() > self._limits.disk_bytes)
        return self._ending(reason, state, over_quota)

    async def _state(self) -> dict[str, Any] | None:
        """The container's state; None if the daemon does not answer."""
        assert self._container is not None
        try:
            shown = await asyncio.wait_for(self._container.show(), _CALL)
        except (DockerError, TimeoutError):
            return None
        return dict(shown.get("State") or {})

    def _ending(self, reason: str | None, state: dict[str, Any], over_quota: bool) -> Ending:
        limits = self._limits
        if reason == "stopped":
            return Ending("Job stopped", stopped=True)
        if reason == "time":
            return Ending(f"Time limit exceeded: the job ran longer than "
                          f"{limits.wall_seconds:g} s and was stopped.", limit="time")
        code = int(state.get("ExitCode", -1))
        if state.get("OOMKilled"):
            return Ending(f"Memory limit exceeded ({limits.memory_bytes // _MIB} MB): the "
                          f"algorithm was killed for running out of memory.",
                          limit="memory", exit_code=code)
        if reason == "disk" or code == 128 + signal.SIGXFSZ or over_quota:
            return Ending(f"Disk limit exceeded: outputs may total {limits.disk_bytes} bytes.",
                          limit="disk", exit_code=code)
        if code == 0:
            return Ending("", exit_code=0)
        return Ending(f"Algorithm exited with code {code}.", exit_code=code)

    async def _drain_log(self) -> None:
        if self._log_task is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._log_task), _LOG_DRAIN)

    async def _follow_log(self) -> None:
        """Copy the container's log to ``algorithm.log`` until the container ends."""
        assert self._container is not None
        handle: BinaryIO = await asyncio.to_thread(self._workspace.log_file.open, "ab")
        left = self._options.log_bytes
        try:
            async for piece in self._container.log(stdout=True, stderr=True, follow=True):
                data = piece.encode()
                if left <= 0:
                    continue  # keep reading: the daemon's stream must be drained
                if len(data) > left:
                    data = data[:left] + b"\ntidegate: log cut at %d bytes\n" % (
                        self._options.log_bytes)
                left -= len(data)
                await asyncio.to_thread(_write, handle, data)
        except DockerError:
            logger.warning("compute: the log of a job container could not be read")
        finally:
            await asyncio.to_thread(handle.close)


async def remove_orphans(docker: aiodocker.Docker, book: JobBook,
                         active: Collection[str]) -> None:
    """Remove job containers no live process runs; fail their unfinished jobs.

    A container is left alone while its job is ``active`` here or its lease is held
    by another live Tidegate process, and when neither its job is in ``book``'s store nor
    its mounts are under ``book``'s jobs directory: then it belongs to another Tidegate
    (its own store and compute directory) sharing the daemon, whose jobs are not ours to
    judge.
    """
    try:
        containers = await docker.containers.list(
            all="true", filters=json.dumps({"label": [JOB_LABEL]}))
    except DockerError:
        logger.warning("compute: could not list the daemon's job containers")
        return
    for container in containers:
        job_id = str((container["Labels"] or {}).get(JOB_LABEL, ""))
        if job_id in active:
            continue
        record = await book.load(job_id) if JOB_ID.match(job_id) else None
        if record is None and not _mounts_under(container, str(book.jobs_dir)):
            continue
        if record is not None and record.status not in FINISHED:
            if not await book.lease(job_id):
                continue  # a live Tidegate runs it
            await book.finish(job_id, INTERRUPTED)
        logger.info("compute: removing the container of job %s left by a dead process",
                    job_id)
        with contextlib.suppress(DockerError):
            await container.delete(force=True, v=True)


def _mounts_under(container: DockerContainer, jobs_dir: str) -> bool:
    """Whether a listed container bind-mounts something under ``jobs_dir``."""
    prefix = jobs_dir.rstrip("/") + "/"
    try:
        mounts = container["Mounts"] or []  # a DockerContainer, not a dict: no .get
    except KeyError:
        return False
    return any(str(mount.get("Source", "")).startswith(prefix) for mount in mounts)


def _write(handle: BinaryIO, data: bytes) -> None:
    handle.write(data)
    handle.flush()  # readable by the owner while the job runs
