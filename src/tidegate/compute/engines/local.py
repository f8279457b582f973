"""The local engine: each job runs on this machine in a bubblewrap sandbox.

Life of a job: :meth:`LocalEngine.start` persists the record (status 1) and queues the
job; at most ``maxJobs`` jobs of an environment run at once in this process, the
others wait in status 1. A running job goes through 20 (its inputs, DDOs and
algorithm are fetched into the job's directory; failures end in 31 or 32), 40 (the
algorithm runs in the sandbox) and 70 (results: the regular files under
``/data/outputs``, at most ``max_output_files`` of them, and the algorithm's log). A
non-zero exit, a limit or a stop also end in 70 with a ``detail`` saying why (and how
many outputs were not listed), and the outputs written so far are kept.

Durability and replicas: records live in the store, files under ``data_dir/jobs``.
Each unfinished job is covered by a store lease renewed by the process running it;
a job whose lease lapses (its process died or restarted) is marked failed by any
engine's sweep ("Interrupted by a Tidegate restart"), so no job stays running forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tidegate.compute.engines.base import JobSpec, ResultStream
from tidegate.compute.engines.queueing import (
    ActiveJob,
    cancel,
    check_disk_room,
    queue_deadline,
    wait_for_slot,
)
from tidegate.compute.engines.records import INTERRUPTED, JOB_ID, JobBook, lease_name
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import FINISHED, JobNotFoundError, JobRecord, JobStatus
from tidegate.compute.runtimes import RuntimeRule, default_rules, resolve_runtime
from tidegate.compute.sandbox import Sandbox, SandboxOptions, SandboxUnavailableError, limits_for
from tidegate.compute.workspace import (
    ResultNotFoundError,
    Workspace,
    provision,
)
from tidegate.errors import BadRequestError
from tidegate.files.objects import StorageContext
from tidegate.stores.base import Store

__all__ = ["JobNotFoundError", "LocalEngine", "ResultNotFoundError"]

logger = logging.getLogger(__name__)



#: A job this process accepted and has not finished (no engine-specific run object).
_Active = ActiveJob[None]


class LocalEngine:
    """:class:`~tidegate.compute.engines.base.ComputeEngine` running jobs locally.

    ``data_dir`` holds ``jobs/<job id>/`` (use a directory of its own, e.g.
    ``<TIDEGATE_DATA_DIR>/compute``). ``runtimes`` defaults to
    :func:`~tidegate.compute.runtimes.default_rules`. ``lease_ttl`` (seconds) bounds
    how long a job of a dead process may look unfinished; ``stop_wait`` how long
    :meth:`stop` waits for a job of another process to end.
    """

    def __init__(self, store: Store, storage: StorageContext,
                 environments: Sequence[Environment], data_dir: Path,
                 runtimes: Sequence[RuntimeRule] | None = None,
                 sandbox: SandboxOptions | None = None, *, lease_ttl: float = 15.0,
                 stop_wait: float = 10.0, min_free_bytes: int = 0) -> None:
        self._envs = {env.id: env for env in environments}
        if len(self._envs) != len(environments):
            raise ValueError("compute environment ids must be unique")
        self._store = store
        self._storage = storage
        self._jobs_dir = data_dir / "jobs"
        self._scratch = data_dir / f"probe-{uuid.uuid4().hex[:8]}"
        self._rules = tuple(runtimes) if runtimes is not None else default_rules()
        self.sandbox = Sandbox(sandbox, data_dir / "uids")
        self._slots = {env.id: asyncio.Semaphore(env.max_jobs) for env in environments}
        self._active: dict[str, _Active] = {}
        self._instance = uuid.uuid4().hex
        self._lease_ms = int(lease_ttl * 1000)
        self._book = JobBook(store, self._jobs_dir, self._instance, self._lease_ms)
        self._stop_wait = stop_wait
        self._min_free = min_free_bytes
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._maintainer: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Probe the sandbox and mark jobs of dead processes failed (idempotent)."""
        async with self._open_lock:
            if self._opened:
                return
            await asyncio.to_thread(self._jobs_dir.mkdir, parents=True, exist_ok=True)
            reason = await self.sandbox.probe(self._scratch)
            if self.sandbox.unsafe:
                logger.warning("compute runs WITHOUT a sandbox "
                               "(TIDEGATE_COMPUTE_UNSAFE_NO_SANDBOX): algorithms run as "
                               "this process's user with its access to files and network")
            elif reason is not None:
                logger.warning("compute sandbox unavailable, jobs will be refused: %s", reason)
            if self.sandbox.cgroups is not None:
                logger.info("compute jobs are bounded by %s", self.sandbox.cgroups.describe())
            elif reason is None:
                logger.warning("compute jobs have no cgroup, memory and processes are "
                               "limited per process (rlimits): %s", self.sandbox.cgroup_reason)
            if reason is None and not self.sandbox.unsafe and self.sandbox.seccomp_reason:
                logger.warning("compute jobs run without a seccomp filter: %s",
                               self.sandbox.seccomp_reason)
            await self._sweep()
            self._maintainer = asyncio.create_task(self._maintain())
            self._opened = True

    async def close(self) -> None:
        """Kill running jobs (marked failed) and stop background work."""
        if self._maintainer is not None:
            await cancel(self._maintainer)
        tasks = [a.task for a in self._active.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _maintain(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            rounds += 1
            try:
                for job_id in list(self._active):
                    await self._store.try_lease(lease_name(job_id), self._instance, self._lease_ms)
                if rounds % 3 == 0:
                    await self._sweep()
            except Exception:  # keep renewing: one store hiccup must not orphan every job
                logger.exception("compute lease renewal failed")

    async def _sweep(self) -> None:
        """Fail unfinished jobs whose process is gone (their lease can be taken)."""
        for record in [JobRecord.from_store(json.loads(d)) for d in
                       await self._store.list_jobs(None)]:
            if record.status in FINISHED or record.job_id in self._active:
                continue
            if await self._store.try_lease(lease_name(record.job_id), self._instance,
                                           self._lease_ms):
                logger.info("compute job %s was interrupted by a restart", record.job_id)
                await self._finish(record.job_id, INTERRUPTED)

    # --- protocol ----------------------------------------------------------------------
    async def environments(self) -> list[Environment]:
        """The configured environments with ``currentJobs`` of this process; none while
        no sandbox works (jobs would be refused: see :meth:`unavailable`)."""
        if await self.unavailable() is not None:
            return []
        return [replace(env, current_jobs=sum(1 for a in self._active.values()
                                              if a.env_id == env.id and a.running),
                        queued_jobs=sum(1 for a in self._active.values()
                                        if a.env_id == env.id and not a.running))
                for env in self._envs.values()]

    async def unavailable(self) -> SandboxUnavailableError | None:
        """503 ``sandbox_unavailable`` with the sandbox probe's finding while no sandbox
        works, else ``None`` (also with ``unsafe_no_sandbox``: jobs run unsandboxed)."""
        await self.open()
        if self.sandbox.unavailable is None or self.sandbox.unsafe:
            return None
        return SandboxUnavailableError(
            f"Compute is unavailable: no working sandbox ({self.sandbox.unavailable}). "
            "Install bubblewrap, or see docs/compute.md.")

    def check_container(self, container: Any) -> None:
        """Raise :class:`~tidegate.compute.runtimes.UnsupportedImageError` (400) if
        no runtime of this engine can run ``container``."""
        resolve_runtime(container, self._rules)

    async def start(self, spec: JobSpec) -> JobRecord:
        """Persist and queue the job; raises before persisting anything if the
        environment, container or job id is refused, no sandbox works (503), or
        (``min_free_bytes`` set) the compute directory's disk would keep less than that
        free after the job's inputs and outputs (503 ``insufficient_disk``)."""
        await self.open()
        env = self._envs.get(spec.environment.id)
        if env is None:
            raise BadRequestError("Compute environment does not exist",
                                  code="unknown_environment")
        runtime = resolve_runtime(spec.algorithm.container, self._rules)
        refusal = await self.unavailable()
        if refusal is not None:
            raise refusal
        if not JOB_ID.match(spec.job_id) or await self._store.get_job(spec.job_id):
            raise BadRequestError("Invalid or duplicate job id.", code="invalid_job_id")
        if self._min_free:  # inputs and outputs may each use diskGB
            await check_disk_room(self._jobs_dir, 2 * int(env.disk_gb * 1024**3),
                                  self._min_free)
        workspace = Workspace(self._jobs_dir / spec.job_id)
        argv = runtime.argv(str(spec.algorithm.container.get("entrypoint") or ""),
                            self.sandbox.algorithm_path(workspace))
        await self._store.try_lease(lease_name(spec.job_id), self._instance, self._lease_ms)
        record = self._book.new_record(spec)
        await self._save(record)
        active = self._active[spec.job_id] = _Active(spec.job_id, env.id)
        active.task = asyncio.create_task(
            self._run(spec, env, argv, runtime.paths, runtime.env, workspace, active))
        return record

    async def jobs(self, owner: str | None, job_id: str | None,
                   did: str | None) -> list[JobRecord]:
        """Records matching every given filter (owner compared case-insensitively)."""
        await self.open()
        return await self._book.query(owner, job_id, did)

    async def stop(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """Stop the owner's matching unfinished jobs; return every matching record."""
        records = await self.jobs(owner, job_id, did)
        pending = [r.job_id for r in records if r.status not in FINISHED]
        for record in records:
            if record.status not in FINISHED:
                await self._request_stop(record)
        deadline = time.monotonic() + self._stop_wait
        while pending and time.monotonic() < deadline:
            current = [await self._load(j) for j in pending]
            pending = [r.job_id for r in current if r is not None and r.status not in FINISHED]
            if pending:
                await asyncio.sleep(0.1)
        refreshed = [await self._load(r.job_id) for r in records]
        return [r for r in refreshed if r is not None]

    async def delete(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """Stop the owner's matching jobs, delete their files, keep a tombstone.

        As the reference (operator-service marks ``removed``), the record stays with
        ``removed: 1`` and no results, so a repeated status or delete still finds it.
        """
        records = await self.stop(owner, job_id, did)
        for record in records:
            await asyncio.to_thread(Workspace(self._jobs_dir / record.job_id).remove)
            record.removed, record.results = True, []
            await self._save(record)
        return records

    async def result(self, owner: str, job_id: str, index: int) -> ResultStream:
        """Open result ``index`` of the owner's job for streaming."""
        return await self._book.open_result(owner, job_id, index)

    async def follow_log(self, owner: str, job_id: str) -> AsyncIterator[bytes]:
        """The running job's log as it grows (the store's record says when it ends)."""
        return await self._book.follow_log(owner, job_id)

    # --- running a job -----------------------------------------------------------------
    async def _run(self, spec: JobSpec, env: Environment, argv: list[str],
                   paths: Sequence[str], runtime_env: Any, workspace: Workspace,
                   active: _Active) -> None:
        job_id = spec.job_id
        try:
            if not await wait_for_slot(self._slots[env.id], active,
                                       lambda: self._stop_requested(active),
                                       queue_deadline(spec.queue_max_wait)):
                await self._book.end_unrun(spec, active.stop.is_set())
                return
            try:
                active.running = True
                await self._execute(spec, env, argv, paths, runtime_env, workspace, active)
            finally:
                active.running = False
                self._slots[env.id].release()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._finish(job_id, "Interrupted: Tidegate shut down during the job.")
            raise
        except Exception:
            logger.exception("compute job %s failed", job_id)
            with contextlib.suppress(Exception):
                await self._finish(job_id, "Internal error while running the job.")
        finally:
            self._active.pop(job_id, None)

    async def _stop_requested(self, active: _Active) -> bool:
        """True once a stop was asked here or (through the store) by another process."""
        record = await self._load(active.job_id)
        # Deleted, stopped, or already failed by another engine's sweep (this process
        # looked dead to it): no one waits for this run any more.
        if record is None or record.stop_requested or record.status in FINISHED:
            active.stop.set()
        return active.stop.is_set()

    async def _execute(self, spec: JobSpec, env: Environment, argv: list[str],
                       paths: Sequence[str], runtime_env: Any, workspace: Workspace,
                       active: _Active) -> None:
        job_id = spec.job_id
        await asyncio.to_thread(workspace.create)
        await self._update(job_id, JobStatus.CONFIGURING_VOLUMES)
        limits = limits_for(env, spec.max_duration, self.sandbox.options)
        provision_task = asyncio.ensure_future(
            provision(spec, workspace, self._storage, limits.disk_bytes))
        stopped = asyncio.ensure_future(active.stop.wait())
        done, _ = await asyncio.wait({provision_task, stopped}, return_when=asyncio.FIRST_COMPLETED,
                                     timeout=max(60.0, limits.wall_seconds))
        await cancel(stopped)
        if provision_task not in done:
            await cancel(provision_task)
            if active.stop.is_set():
                await self._finish(job_id, "Job stopped", stopped=True)
            else:
                await self._finish(job_id, "Timed out fetching the inputs.",
                                   JobStatus.DATA_PROVISIONING_FAILED)
            return
        failure = provision_task.result()
        if failure is not None:
            await self._finish(job_id, failure[1], failure[0])
            return
        await self._update(job_id, JobStatus.RUNNING)
        last_check = time.monotonic()

        async def should_stop() -> bool:
            nonlocal last_check
            if not active.stop.is_set() and time.monotonic() - last_check >= 1.0:
                last_check = time.monotonic()  # another process may have asked (store)
                await self._stop_requested(active)
            return active.stop.is_set()

        algo_env = {**runtime_env, "ALGO": self.sandbox.algorithm_path(workspace),
                    "DIDS": json.dumps([i.did for i in spec.inputs]),
                    "TRANSFORMATION_DID": spec.algorithm.did or ""}
        try:
            outcome = await self.sandbox.run(
                argv, algo_env, workspace, limits, extra_paths=paths, should_stop=should_stop,
                allow_network=spec.allow_network and env.allow_network)
        finally:
            # /data/logs is scratch (never a result): it holds no disk after the run.
            await asyncio.shield(asyncio.to_thread(workspace.clear_scratch))
        await self._finish(job_id, outcome.detail, stopped=outcome.stopped)

    # --- records ---------------------------------------------------------------------
    async def _request_stop(self, record: JobRecord) -> None:
        active = self._active.get(record.job_id)
        await self._update(record.job_id, None, stop_requested=True)
        if active is not None:
            active.stop.set()
        elif await self._store.try_lease(lease_name(record.job_id), self._instance,
                                         self._lease_ms):
            await self._finish(record.job_id, "Job stopped", stopped=True)  # orphaned

    # Records and files: the same book as the Docker engine's (engines/records.py).
    async def _load(self, job_id: str) -> JobRecord | None:
        return await self._book.load(job_id)

    async def _save(self, record: JobRecord) -> None:
        await self._book.save(record)

    async def _update(self, job_id: str, status: JobStatus | None,
                      stop_requested: bool | None = None) -> None:
        await self._book.update(job_id, status, stop_requested=stop_requested)

    async def _finish(self, job_id: str, detail: str,
                      status: JobStatus = JobStatus.COMPLETED, *, stopped: bool = False) -> None:
        """Mark the job finished; its log is always a result, on 70 its outputs too
        (at most the sandbox's ``max_output_files``)."""
        await self._book.finish(job_id, detail, status, stopped=stopped,
                                max_outputs=self.sandbox.options.max_output_files)
