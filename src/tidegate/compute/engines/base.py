"""The engine protocol: what the compute commands need from any C2D back end.

The commands validate orders, trust rules and fees, decrypt the input and algorithm
file objects with the provider key, and hand the engine a :class:`JobSpec`. The
engine runs the job, keeps the :class:`~tidegate.compute.jobs.JobRecord` up to date
in the store, and serves results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobRecord
from tidegate.errors import TidegateError


@dataclass(frozen=True)
class JobInput:
    """One dataset: its DDO and its decrypted file objects (raw dicts)."""

    did: str
    service_id: str
    transfer_tx: str
    ddo: Mapping[str, Any]
    files: list[dict[str, Any]]
    userdata: Any = None


@dataclass(frozen=True)
class JobAlgorithm:
    """The algorithm: raw code, or file objects (a published algorithm's files)."""

    container: Mapping[str, Any]
    """``{"entrypoint": "python $ALGO", "image": ..., "tag": ..., "checksum": ...}``."""
    rawcode: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    did: str | None = None
    ddo: Mapping[str, Any] | None = None
    algocustomdata: Any = None
    userdata: Any = None
    service_id: str | None = None
    transfer_tx: str | None = None


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    owner: str
    environment: Environment
    chain_id: int
    agreement_id: str
    inputs: list[JobInput]
    algorithm: JobAlgorithm
    max_duration: int
    """Seconds the job may run (paid duration, capped by the environment)."""
    allow_network: bool = False
    protocol: str = "classic"
    """Which generation started the job: ``classic`` (Provider API) or ``node`` (Ocean
    Node's protocol); the job is rendered in that generation's shape."""
    resources: tuple[tuple[str, float], ...] = ()
    """Ocean Node's protocol: the resources the job was granted (id, amount)."""
    free: bool = False
    """Started through Ocean Node's free compute."""
    queue_max_wait: int = 0
    """Seconds the job may wait for a free slot (its ``queueMaxWaitTime``) before it is
    ended unrun; 0: as long as it takes. The operator-service engine leaves it to the
    operator."""


@dataclass
class ResultStream:
    """A result file opened for download."""

    filename: str
    size: int
    content_type: str
    chunks: AsyncIterator[bytes]


class ComputeEngine(Protocol):
    async def environments(self) -> list[Environment]:
        """Every environment this engine can run jobs in now (all chains).

        An engine that cannot run jobs (no working sandbox, no daemon) offers none:
        ``computeEnvironments`` advertises only what runs; :meth:`unavailable` says why.
        """

    async def unavailable(self) -> TidegateError | None:
        """The error (a 503 naming why, safe to show) every job request gets while this
        engine cannot run jobs, or ``None`` when it can."""

    def check_container(self, container: Mapping[str, Any]) -> None:
        """Raise a 400 (``unsupported_image``) if this engine cannot run ``container``."""

    async def start(self, spec: JobSpec) -> JobRecord:
        """Accept the job (it runs in the background); return its first record."""

    async def jobs(self, owner: str | None, job_id: str | None,
                   did: str | None) -> list[JobRecord]:
        """Records matching every given filter (None = any)."""

    async def stop(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """Stop the owner's matching running jobs; return their records."""

    async def delete(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """Stop if running, then delete the owner's matching jobs and their results."""

    async def result(self, owner: str, job_id: str, index: int) -> ResultStream:
        """Open result ``index`` of the owner's job (400/404 style errors if absent)."""

    async def follow_log(self, owner: str, job_id: str) -> AsyncIterator[bytes]:
        """The algorithm log of the owner's *unfinished* job, read as it grows until the
        job ends; raises 404 ``job_not_found`` / ``job_not_running`` before that."""

    async def close(self) -> None:
        """Stop background work (running jobs are killed and marked failed)."""
