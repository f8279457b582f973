"""Several engines of this machine behind one: each environment's jobs go to its engine.

The local and Docker engines share the store (records, leases) and the compute
directory, so any of them can list every job; stop, delete and results go to the
engine of the job's environment, which can kill its process or container at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from tidegate.compute.engines.base import ComputeEngine, JobSpec, ResultStream
from tidegate.compute.engines.records import JOB_ID
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobNotFoundError, JobRecord
from tidegate.errors import BadRequestError, TidegateError

__all__ = ["EngineRouter", "MachineEngine"]


class MachineEngine(ComputeEngine, Protocol):
    """An engine of this machine: opened at start-up (probe, sweep, background work)."""

    async def open(self) -> None:
        """Probe, clean up after dead processes, start background work (idempotent)."""


class EngineRouter:
    """:class:`~tidegate.compute.engines.base.ComputeEngine` over named engines.

    ``engines``: name -> engine (``"local"``, ``"docker"``); ``by_environment``:
    environment id -> engine name. The first engine answers listings.
    """

    def __init__(self, engines: Mapping[str, MachineEngine],
                 by_environment: Mapping[str, str]) -> None:
        if not engines or set(by_environment.values()) - set(engines):
            raise ValueError("every environment needs one of the engines")
        self._engines = dict(engines)
        self._by_env = dict(by_environment)
        self._first = next(iter(self._engines.values()))

    def _of(self, environment: str) -> MachineEngine:
        return self._engines[self._by_env.get(environment, next(iter(self._engines)))]

    async def open(self) -> None:
        for engine in self._engines.values():
            await engine.open()

    async def close(self) -> None:
        await asyncio.gather(*(e.close() for e in self._engines.values()))

    async def unavailable(self) -> TidegateError | None:
        """An error only when no engine can run a job (the first engine's); an engine
        that is down refuses its own environments' jobs itself."""
        refusals = [await engine.unavailable() for engine in self._engines.values()]
        if all(refusal is not None for refusal in refusals):
            return refusals[0]
        return None

    async def environments(self) -> list[Environment]:
        return [env for engine in self._engines.values()
                for env in await engine.environments()]

    def check_container(self, container: Mapping[str, Any]) -> None:
        """Accepted if some engine can run it; else the refusal of the most general
        engine (Docker's, which runs any image, when there is one)."""
        refusal: BadRequestError | None = None
        for name in sorted(self._engines, key=lambda n: n != "docker"):
            try:
                self._engines[name].check_container(container)
            except BadRequestError as exc:
                refusal = refusal or exc
            else:
                return
        if refusal is not None:
            raise refusal

    async def start(self, spec: JobSpec) -> JobRecord:
        return await self._of(spec.environment.id).start(spec)

    async def jobs(self, owner: str | None, job_id: str | None,
                   did: str | None) -> list[JobRecord]:
        return await self._first.jobs(owner, job_id, did)

    async def stop(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        stopped: list[JobRecord] = []
        for record in await self.jobs(owner, job_id, did):
            stopped += await self._of(record.environment).stop(owner, record.job_id, None)
        return stopped

    async def delete(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        deleted: list[JobRecord] = []
        for record in await self.jobs(owner, job_id, did):
            deleted += await self._of(record.environment).delete(owner, record.job_id, None)
        return deleted

    async def follow_log(self, owner: str, job_id: str) -> AsyncIterator[bytes]:
        records = await self.jobs(owner, job_id, None) if JOB_ID.match(job_id) else []
        if not records:
            raise JobNotFoundError("Job not found.")
        return await self._of(records[0].environment).follow_log(owner, job_id)

    async def result(self, owner: str, job_id: str, index: int) -> ResultStream:
        records = await self.jobs(owner, job_id, None) if JOB_ID.match(job_id) else []
        if not records:
            raise JobNotFoundError("Job not found.")
        return await self._of(records[0].environment).result(owner, job_id, index)
