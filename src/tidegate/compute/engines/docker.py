"""The Docker engine: each job runs in the algorithm's own image, in a hardened container.

Life of a job (the local engine's, with an image): :meth:`DockerEngine.start` checks the
image reference (and, if the daemon has the image, its checksum: 400 on a mismatch),
persists the record (status 1) and queues the job; at most ``maxJobs`` run at once per
environment in this process. A running job goes through 20 (inputs, DDOs and algorithm
fetched into its workspace, then the image pulled if absent and checked against
``container.checksum``: failures end in 31 or 32 with a ``detail``), 40 (the container
runs; its stdout and stderr are the algorithm log, result 0 while it runs) and 70 (every
file under ``/data/outputs`` and the log). Limits (time, memory, outputs) and stops end
in 70 too, with a ``detail`` saying why; the container is always removed.

What the container may do is :mod:`tidegate.compute.engines.container_spec`'s. The
daemon must see this process's compute directory at the same path (a local socket, or a
host sharing that filesystem): the workspace is bind-mounted.

Crashes: records, leases and workspaces are shared with the local engine
(:mod:`~tidegate.compute.engines.records`). Containers carry the job id as a label; at
start and then periodically, a labelled container whose job no live process holds is
removed and its job marked failed ("Interrupted by a Tidegate restart.").

Images: those this engine pulls are recorded (:mod:`~tidegate.compute.engines.docker_cache`)
and, beyond ``DockerOptions.image_cache_bytes``, evicted least recently used first (never
one a job container uses or a job here is about to run), after each pull and at each sweep.

Hosts: the engine runs on one daemon or several (:mod:`~tidegate.compute.engines.docker_hosts`).
A job that has its ``maxJobs`` slot waits (status 1) for a host with room, runs there, and
holds that room until it ends. A host that stops answering ends its running jobs in 70 with
:data:`~tidegate.compute.engines.docker_hosts.HOST_LOST` (status text
:data:`~tidegate.compute.engines.docker_hosts.HOST_LOST_TEXT`); once it answers again,
its leftover containers are removed and it takes jobs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import aiodocker
from aiodocker.exceptions import DockerError

from tidegate.compute.engines.base import JobSpec, ResultStream
from tidegate.compute.engines.container_spec import (
    DockerOptions,
    container_config,
    grant_outputs,
    limits_of,
)
from tidegate.compute.engines.docker_cache import ImageCache
from tidegate.compute.engines.docker_hosts import (
    HOST_LOST,
    HOST_LOST_TEXT,
    DockerHost,
    HostPool,
    held_labels,
)
from tidegate.compute.engines.docker_images import (
    ImageCheckError,
    ImageRef,
    check_allowed,
    ensure_image,
    inspect_image,
    parse_image,
    verify_checksum,
)
from tidegate.compute.engines.docker_run import ContainerRun, remove_orphans
from tidegate.compute.engines.queueing import (
    ActiveJob,
    cancel,
    check_disk_room,
    queue_deadline,
    queue_expired,
    until_stopped,
    wait_for_slot,
)
from tidegate.compute.engines.records import INTERRUPTED, JOB_ID, JobBook
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import FINISHED, JobRecord, JobStatus
from tidegate.compute.runtimes import entrypoint_argv
from tidegate.compute.sandbox import Limits, SandboxOptions, limits_for
from tidegate.compute.workspace import Workspace, provision
from tidegate.errors import BadRequestError, ServiceUnavailableError
from tidegate.files.objects import StorageContext
from tidegate.stores.base import Store

__all__ = ["DockerEngine", "DockerUnavailableError"]

logger = logging.getLogger(__name__)

_Active = ActiveJob[ContainerRun]
_STOPPED: Final = "Job stopped"


class DockerUnavailableError(ServiceUnavailableError):
    """The Docker daemon does not answer: jobs are refused until it does."""

    code = "docker_unavailable"


class DockerEngine:
    """:class:`~tidegate.compute.engines.base.ComputeEngine` on a Docker daemon.

    ``docker``: the client the composition root built, or its hosts (each with its
    client); this engine never closes a client. Hosts are probed every ``lease_ttl``
    seconds; with ``options.place_by_capacity`` jobs are placed by CPUs and memory.
    ``data_dir`` holds ``jobs/<job id>/`` (the local engine's compute directory may be
    shared). ``lease_ttl`` and ``stop_wait`` as for the local engine.
    """

    def __init__(self, store: Store, storage: StorageContext,
                 environments: Sequence[Environment], data_dir: Path,
                 docker: aiodocker.Docker | Sequence[DockerHost],
                 options: DockerOptions | None = None, *,
                 lease_ttl: float = 15.0, stop_wait: float = 10.0) -> None:
        self._envs = {env.id: env for env in environments}
        if len(self._envs) != len(environments):
            raise ValueError("compute environment ids must be unique")
        self._storage = storage
        self.options = options or DockerOptions()
        hosts = [DockerHost(docker)] if isinstance(docker, aiodocker.Docker) else list(docker)
        self._instance = uuid.uuid4().hex
        self._hosts = HostPool(hosts, capacity=self.options.place_by_capacity,
                               probe_interval=lease_ttl, max_backoff=4 * lease_ttl,
                               min_free_bytes=self.options.min_free_bytes,
                               instance=self._instance)
        pinned = {env.docker_host for env in environments if env.docker_host}
        if pinned - {host.url for host in hosts}:
            raise ValueError("an environment's dockerHost is not one of the hosts")
        self._book = JobBook(store, data_dir / "jobs", self._instance, int(lease_ttl * 1000))
        self._slots = {env.id: asyncio.Semaphore(env.max_jobs) for env in environments}
        self._active: dict[str, _Active] = {}
        self._stop_wait = stop_wait
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._maintainer: asyncio.Task[None] | None = None
        self._checking: asyncio.Task[None] | None = None
        # One image cache per daemon (``images.json`` with one host, as before).
        self._caches = {host: ImageCache(host.docker, data_dir / (
            "images.json" if len(hosts) == 1 else
            f"images-{hashlib.sha256(host.url.encode()).hexdigest()[:12]}.json"),
            self.options.image_cache_bytes) for host in hosts}
        self.images = self._caches[hosts[0]]
        self._evictions: set[asyncio.Task[list[str]]] = set()

    @property
    def hosts(self) -> list[DockerHost]:
        """The daemons this engine runs on, with their state (read-only use)."""
        return list(self._hosts.hosts)

    @property
    def unavailable_reason(self) -> str | None:
        """Why no job can run now (no host answers), else None."""
        return self._hosts.unavailable_reason()

    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Probe the daemon, remove leftovers of dead processes (idempotent)."""
        async with self._open_lock:
            if self._opened:
                return
            await asyncio.to_thread(self._book.jobs_dir.mkdir, parents=True, exist_ok=True)
            await self._hosts.check()
            await self._sweep()
            self._maintainer = asyncio.create_task(self._maintain())
            self._opened = True

    async def close(self) -> None:
        """Kill running jobs: marked failed, their containers removed before this returns."""
        if self._maintainer is not None:
            await cancel(self._maintainer)
        if self._checking is not None:
            await cancel(self._checking)
        for eviction in list(self._evictions):
            await cancel(eviction)
        actives = list(self._active.values())
        tasks = [a.task for a in actives if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for active in actives:  # a removal the cancellation cut short
            if active.run is not None and not active.run.removed:
                await active.run.remove()

    async def _maintain(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self._book.lease_ms / 3000)
            rounds += 1
            try:
                for job_id in list(self._active):
                    await self._book.lease(job_id)
                if self._checking is None or self._checking.done():
                    # Apart from the leases: a host gone silent may take 20 s to time out.
                    self._checking = asyncio.create_task(self._check_hosts())
                if rounds % 3 == 0:
                    await self._sweep()
            except Exception:  # keep renewing: one hiccup must not orphan every job
                logger.exception("compute lease renewal failed")

    async def _check_hosts(self) -> None:
        """Probe the hosts that are due: one that went away ends its jobs (they watch
        its ``lost`` event) and gets none; one that came back is tidied, then used."""
        try:
            for host in await self._hosts.check():
                await remove_orphans(host.docker, self._book, set(self._active))
        except Exception:
            logger.exception("compute: checking the Docker hosts failed")

    async def _sweep(self) -> None:
        """Fail unfinished jobs whose process is gone; remove containers no one runs and
        the files of jobs past ``storageExpiry``."""
        for record in await self._book.all():
            if record.status in FINISHED or record.job_id in self._active:
                continue
            if await self._book.lease(record.job_id):
                logger.info("compute job %s was interrupted by a restart", record.job_id)
                await self._book.finish(record.job_id, INTERRUPTED)
        for host in self._hosts.up():
            await remove_orphans(host.docker, self._book, set(self._active))
            await self._caches[host].evict()
        expired = await self._book.expire(
            {env.id: env.storage_expiry for env in self._envs.values()}, time.time())
        if expired:
            logger.info("compute: results of %d jobs expired (storageExpiry)", len(expired))

    # --- protocol ----------------------------------------------------------------------
    async def environments(self) -> list[Environment]:
        """The environments some answering host can run (``currentJobs`` of this
        process): one pinned to a host that is down, or too big for every host that
        answers, is not offered while that lasts."""
        await self.open()
        return [replace(env, current_jobs=sum(1 for a in self._active.values()
                                              if a.env_id == env.id and a.running),
                        queued_jobs=sum(1 for a in self._active.values()
                                        if a.env_id == env.id and not a.running))
                for env in self._envs.values() if self._hosts.can_run(env)]

    async def unavailable(self) -> DockerUnavailableError | None:
        """503 ``docker_unavailable`` while no host answers (probed at start and every
        few seconds), else None."""
        await self.open()
        if self.unavailable_reason is None:
            return None
        return DockerUnavailableError(f"Compute is unavailable: {self.unavailable_reason}.")

    def check_container(self, container: Any) -> None:
        """400 ``unsupported_image`` unless ``container`` names a valid image
        (and checksum, when required) and an entrypoint."""
        parse_image(container, require_checksum=self.options.require_checksum)
        entrypoint_argv(container.get("entrypoint"))

    async def start(self, spec: JobSpec) -> JobRecord:
        """Persist and queue the job; raises before persisting anything if the
        environment, container, image (``allowedImages``: 400 ``image_not_allowed``) or
        job id is refused (400), the image the daemon has does not match the checksum
        (400 ``image_checksum_mismatch``), no host can run the environment's jobs (503
        ``docker_unavailable``), or the disk of the compute directory or of every local
        daemon's data root is too full (503 ``insufficient_disk``)."""
        await self.open()
        env = self._envs.get(spec.environment.id)
        if env is None:
            raise BadRequestError("Compute environment does not exist",
                                  code="unknown_environment")
        self.check_container(spec.algorithm.container)
        ref = parse_image(spec.algorithm.container,
                          require_checksum=self.options.require_checksum)
        check_allowed(ref, env.allowed_images)
        refusal = await self.unavailable()
        if refusal is not None:
            raise refusal
        if not self._hosts.can_run(env):
            raise DockerUnavailableError("Compute is unavailable: no Docker host that can "
                                         "run this environment's jobs answers.")
        if not JOB_ID.match(spec.job_id) or await self._book.store.get_job(spec.job_id):
            raise BadRequestError("Invalid or duplicate job id.", code="invalid_job_id")
        # Inputs and outputs may each use diskGB.
        await check_disk_room(self._book.jobs_dir, 2 * int(env.disk_gb * 1024**3),
                              self.options.min_free_bytes)
        await self._hosts.check_disk(env)  # the daemons' own data roots
        try:
            present = await inspect_image(
                next(h for h in self._hosts.eligible(env) if h.up).docker, ref)
        except (DockerError, StopIteration):
            present = None  # checked again once the job runs
        if present is not None:
            verify_checksum(ref, present)  # refuse now what would fail in the job
        await self._book.lease(spec.job_id)
        record = self._book.new_record(spec)
        await self._book.save(record)
        active = self._active[spec.job_id] = ActiveJob(spec.job_id, env.id)
        active.task = asyncio.create_task(self._run(spec, env, ref, active))
        return record

    async def jobs(self, owner: str | None, job_id: str | None,
                   did: str | None) -> list[JobRecord]:
        """Records matching every given filter (owner compared case-insensitively)."""
        await self.open()
        return await self._book.query(owner, job_id, did)

    async def stop(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """Stop the owner's matching unfinished jobs (containers killed at once)."""
        records = await self.jobs(owner, job_id, did)
        pending = [r.job_id for r in records if r.status not in FINISHED]
        for job in pending:
            await self._request_stop(job)
        deadline = time.monotonic() + self._stop_wait
        while pending and time.monotonic() < deadline:
            current = [await self._book.load(j) for j in pending]
            pending = [r.job_id for r in current if r is not None and r.status not in FINISHED]
            if pending:
                await asyncio.sleep(0.05)
        refreshed = [await self._book.load(r.job_id) for r in records]
        return [r for r in refreshed if r is not None]

    async def delete(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """Stop the owner's matching jobs, delete their files, keep a tombstone."""
        records = await self.stop(owner, job_id, did)
        for record in records:
            await asyncio.to_thread(self._book.workspace(record.job_id).remove)
            record.removed, record.results = True, []
            await self._book.save(record)
        return records

    async def result(self, owner: str, job_id: str, index: int) -> ResultStream:
        """Open result ``index`` of the owner's job (the log also while it runs)."""
        return await self._book.open_result(owner, job_id, index)

    async def follow_log(self, owner: str, job_id: str) -> AsyncIterator[bytes]:
        """The running job's log as it grows (the store's record says when it ends)."""
        return await self._book.follow_log(owner, job_id)

    # --- running a job -----------------------------------------------------------------
    async def _request_stop(self, job_id: str) -> None:
        await self._book.update(job_id, None, stop_requested=True)
        active = self._active.get(job_id)
        if active is not None:
            active.stop.set()
            if active.run is not None:
                await active.run.kill()  # at once, not at the next poll
        elif await self._book.lease(job_id):
            await self._book.finish(job_id, _STOPPED, stopped=True)  # orphaned

    async def _run(self, spec: JobSpec, env: Environment, ref: ImageRef,
                   active: _Active) -> None:
        job_id = spec.job_id
        deadline = queue_deadline(spec.queue_max_wait)

        async def stopped_or_expired() -> bool:
            return queue_expired(deadline) or await self._stopped(active)

        try:
            if not await wait_for_slot(self._slots[env.id], active,
                                       lambda: self._stopped(active), deadline):
                await self._book.end_unrun(spec, active.stop.is_set())
                return
            try:
                host = await self._hosts.reserve(job_id, env, stopped_or_expired)
                if host is None:
                    await self._book.end_unrun(spec, active.stop.is_set())
                    return
                try:
                    active.running = True
                    if not await self._hosts.run_on(
                            host, self._execute(spec, env, ref, active, host)):
                        logger.warning("compute job %s ended: %s stopped answering",
                                       job_id, host.name)
                        await self._book.finish(job_id, HOST_LOST, status_text=HOST_LOST_TEXT)
                finally:
                    active.running = False
                    await self._hosts.release(job_id)
            finally:
                self._slots[env.id].release()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._book.finish(job_id,
                                        "Interrupted: Tidegate shut down during the job.")
            raise
        except Exception:
            logger.exception("compute job %s failed", job_id)
            with contextlib.suppress(Exception):
                await self._book.finish(job_id, "Internal error while running the job.")
        finally:
            self._active.pop(job_id, None)

    async def _stopped(self, active: _Active) -> bool:
        if await self._book.stop_requested(active.job_id):
            active.stop.set()
        return active.stop.is_set()

    async def _execute(self, spec: JobSpec, env: Environment, ref: ImageRef,
                       active: _Active, host: DockerHost) -> None:
        job_id = spec.job_id
        workspace = self._book.workspace(job_id)
        await asyncio.to_thread(workspace.create)
        await self._book.update(job_id, JobStatus.CONFIGURING_VOLUMES)
        limits = limits_of(limits_for(env, spec.max_duration, SandboxOptions()), self.options)
        outcome, failure = await until_stopped(
            provision(spec, workspace, self._storage, limits.disk_bytes), active,
            max(60.0, limits.wall_seconds))
        if outcome != "done" or failure is not None:
            await self._fail_provisioning(job_id, outcome, failure, (
                JobStatus.DATA_PROVISIONING_FAILED, "Timed out fetching the inputs."))
            return
        outcome, image = await until_stopped(self._image(ref, host), active,
                                             self.options.pull_timeout + 30)
        if outcome == "done" and (image is None or isinstance(image, tuple)):
            await self._hosts.ensure_up(host)  # a pull that failed as its host went away
        if outcome != "done" or image is None or isinstance(image, tuple):
            await self._fail_provisioning(
                job_id, outcome, image if isinstance(image, tuple) else None,
                (JobStatus.ALGORITHM_PROVISIONING_FAILED, "Timed out pulling the image."))
            return
        image_id = str(image["Id"])
        cache = self._caches[host]
        cache.hold(image_id)  # not evicted while this job needs it
        try:
            await self._contain(spec, env, image, workspace, limits, active, host)
        finally:
            cache.release(image_id)

    async def _contain(self, spec: JobSpec, env: Environment, image: dict[str, Any],
                       workspace: Workspace, limits: Limits, active: _Active,
                       host: DockerHost) -> None:
        job_id = spec.job_id
        await asyncio.to_thread(grant_outputs, workspace, self.options.user)
        config = container_config(
            spec, str(image["Id"]), workspace, limits, self.options, instance=self._instance,
            allow_network=spec.allow_network and env.allow_network, gpus=env.gpus,
            image_volumes=sorted((image.get("Config") or {}).get("Volumes") or {}),
            labels=held_labels(env))
        run = active.run = ContainerRun(host.docker, config, workspace, limits,
                                        self.options)
        try:
            if not await run.start():
                await self._hosts.ensure_up(host)
                await self._book.finish(job_id, "Could not start the algorithm's container.",
                                        JobStatus.ALGORITHM_PROVISIONING_FAILED)
                return
            await self._book.update(job_id, JobStatus.RUNNING, running_log=True)
            last_check = time.monotonic()

            async def should_stop() -> bool:
                nonlocal last_check
                if not active.stop.is_set() and time.monotonic() - last_check >= 1.0:
                    last_check = time.monotonic()  # another process may have asked
                    await self._stopped(active)
                return active.stop.is_set()

            ending = await run.watch(should_stop)
        finally:
            await run.remove()
        if ending.unknown:
            await self._hosts.ensure_up(host)  # how it ended is unknown: host gone?
        await self._book.finish(job_id, ending.detail, stopped=ending.stopped,
                                quota=limits.disk_bytes,
                                max_outputs=self.options.max_output_files)

    async def _image(self, ref: ImageRef,
                     host: DockerHost) -> dict[str, Any] | tuple[JobStatus, str]:
        """The checked image on ``host``, or ``(32, detail)``."""
        images = self._caches[host]
        image, problem, pulled = await ensure_image(host.docker, ref,
                                                    pull_timeout=self.options.pull_timeout,
                                                    auth=self.options.auth_for(ref.name))
        if image is not None:
            if pulled:  # Tidegate's to evict; the others' are never touched
                await images.pulled(ref.reference, image)
                images.hold(str(image["Id"]))  # until its job holds it itself
                task = asyncio.create_task(self._evict_after(images, str(image["Id"])))
                self._evictions.add(task)
                task.add_done_callback(self._evictions.discard)
            else:
                await images.used(ref.reference)
        if problem is not None or image is None:
            return (JobStatus.ALGORITHM_PROVISIONING_FAILED,
                    problem.detail if problem else "The image is not available.")
        try:
            verify_checksum(ref, image)
        except ImageCheckError as exc:
            return JobStatus.ALGORITHM_PROVISIONING_FAILED, exc.message
        return image

    async def _evict_after(self, images: ImageCache, image_id: str) -> list[str]:
        """Evict beyond the cap once a pull added to the cache (the new image held)."""
        try:
            return await images.evict()
        except Exception:
            logger.exception("compute: image cache eviction failed")
            return []
        finally:
            images.release(image_id)

    async def _fail_provisioning(self, job_id: str, outcome: str,
                                 failure: tuple[JobStatus, str] | None,
                                 on_timeout: tuple[JobStatus, str]) -> None:
        if outcome == "stopped":
            await self._book.finish(job_id, _STOPPED, stopped=True)
        elif outcome == "timeout":
            await self._book.finish(job_id, on_timeout[1], on_timeout[0])
        elif failure is not None:
            await self._book.finish(job_id, failure[1], failure[0])
