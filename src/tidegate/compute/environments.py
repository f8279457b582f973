"""Compute environments: what a job may use, what it costs, who orders for it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

NVIDIA: Final = "nvidia"
DEVICES: Final = "devices"


@dataclass(frozen=True)
class Gpus:
    """The GPUs every job of an environment gets (Docker engine only).

    ``driver`` ``nvidia``: a device request to the NVIDIA container runtime, for the
    GPUs ``device_ids`` names (indexes or ``GPU-…`` UUIDs), else any ``count`` of them.
    ``devices``: the host device nodes ``device_ids`` names (``/dev/dri/renderD128``…)
    are passed into the container (AMD, Intel and other GPUs).
    """

    count: int
    type: str = ""
    driver: Literal["nvidia", "devices"] = NVIDIA
    device_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """One compute environment on one chain.

    ``consumer_address`` is the compute engine's wallet: dataset orders for compute
    name it as ``consumer`` (the user is the payer). ``price_min`` is the price per
    minute in fee-token units (0 = free).
    """

    id: str
    chain_id: int
    consumer_address: str
    fee_token: str
    price_min: Decimal = Decimal(0)
    cpu_number: int = 1
    ram_gb: float = 1.0
    disk_gb: float = 1.0
    max_jobs: int = 2
    max_job_duration: int = 600
    storage_expiry: int = 86400
    description: str = "Local sandboxed compute"
    allow_network: bool = False
    current_jobs: int = 0
    queued_jobs: int = 0
    """Jobs of this process accepted and waiting for a slot (as ``current_jobs``)."""
    engine: str = "local"
    """Which engine runs its jobs: ``local`` (bubblewrap) or ``docker``."""
    allowed_images: tuple[str, ...] = ()
    """Docker only: glob patterns an image reference must match (empty: any image)."""
    gpus: Gpus | None = None
    """Docker only: the GPUs each of its jobs gets (None: no GPU, no device)."""
    docker_host: str = ""
    """Docker only: the one configured daemon (its URL) its jobs run on ("": any host).
    Never shown to clients."""
    free_jobs_per_consumer: int = 0
    """Free compute (Ocean Node's protocol): unfinished free jobs one consumer may have
    at once in this environment; 0 means ``max_jobs``."""

    @property
    def free_job_limit(self) -> int:
        return self.free_jobs_per_consumer or self.max_jobs

    @property
    def free(self) -> bool:
        return self.price_min == 0

    def to_json(self) -> dict[str, Any]:
        """The environment object clients read (reference/operator field names)."""
        return {
            "id": self.id,
            "chainId": self.chain_id,
            "consumerAddress": self.consumer_address,
            "feeToken": self.fee_token,
            "priceMin": float(self.price_min),
            "free": self.free,
            "cpuNumber": self.cpu_number,
            "cpuType": "local",
            "gpuNumber": self.gpus.count if self.gpus else 0,
            "gpuType": self.gpus.type if self.gpus else "",
            "ramGB": self.ram_gb,
            "diskGB": self.disk_gb,
            "maxJobs": self.max_jobs,
            "currentJobs": self.current_jobs,
            "maxJobDuration": self.max_job_duration,
            "storageExpiry": self.storage_expiry,
            "desc": self.description,
            "lastSeen": 0,
        }
