"""C2D v2 (Ocean Node's protocol): an environment described by its resources and prices.

One source: the configured :class:`~tidegate.compute.environments.Environment`. Every
job of an environment gets the same ``cpu`` (CPUs), ``ram`` and ``disk`` (GB) and its
GPUs, and at most ``maxJobs`` jobs run at once, so in Ocean Node's terms each resource
has ``min == max ==`` the per-job amount, ``total`` = per-job amount x ``maxJobs``
(GPUs: the devices every job shares, so ``total`` = the count) and ``inUse`` = per-job
amount x running jobs. A request for less than ``min`` is raised to it (as Ocean Node
does); more than ``max`` is refused.

Prices: the environment's ``priceMin`` (fee-token units per minute for the whole job)
is carried by ``cpu``: ``price(cpu) = priceMin / cpu``, ``ram``, ``disk`` and ``gpu``
cost 0, so Ocean Node's cost rule ``sum(price x amount) x ceil(minutes)`` gives
``priceMin x ceil(minutes)`` for the only request an environment admits.

Free compute: an environment whose ``priceMin`` is 0 offers a ``free`` block with the
same resources, its ``maxJobDuration``, ``maxJobs`` and ``storageExpiry``, and
``freeJobsPerConsumer`` (unfinished free jobs one consumer may have at once). A priced
environment has no ``free`` block: free jobs there are refused.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from tidegate.compute.environments import Environment
from tidegate.errors import BadRequestError

RESOURCE_IDS: Final = ("cpu", "ram", "disk", "gpu")


class ResourcesRefusedError(BadRequestError):
    """A job's resource request the environment cannot meet (400)."""

    code = "resources_unavailable"


@dataclass(frozen=True)
class Resource:
    """One resource of an environment, in Ocean Node's terms (ram and disk in GB)."""

    id: str
    total: float
    min: float
    max: float
    in_use: float = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.id, "kind": "discrete" if self.id == "gpu"
                else "quantity", "total": _number(self.total), "min": _number(self.min),
                "max": _number(self.max), "inUse": _number(self.in_use)}


@dataclass(frozen=True)
class ResourceAmount:
    """``amount`` of resource ``id`` for one job (what a v2 client requests)."""

    id: str
    amount: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "amount": _number(self.amount)}


def _number(value: float) -> int | float:
    """Integral amounts as JSON integers (clients compare them with ``===``)."""
    return int(value) if float(value).is_integer() else float(value)


def per_job(env: Environment) -> dict[str, float]:
    """What every job of ``env`` gets, by resource id."""
    return {"cpu": float(env.cpu_number), "ram": float(env.ram_gb),
            "disk": float(env.disk_gb), "gpu": float(env.gpus.count if env.gpus else 0)}


def environment_resources(env: Environment, running: int) -> list[Resource]:
    """``env``'s resources with ``running`` jobs in progress."""
    amounts = per_job(env)
    resources = []
    for rid in RESOURCE_IDS:
        amount = amounts[rid]
        # GPUs are the same devices for every job: shared, not multiplied.
        total = amount if rid == "gpu" else amount * env.max_jobs
        in_use = min(total, amount if rid == "gpu" and running else amount * running)
        resources.append(Resource(rid, total, amount, amount, in_use))
    return resources


def resource_prices(env: Environment) -> list[dict[str, Any]]:
    """Per-resource prices per unit per minute (see the module docstring)."""
    cpu_price = env.price_min / Decimal(env.cpu_number)
    return [{"id": rid, "price": float(cpu_price) if rid == "cpu" else 0}
            for rid in RESOURCE_IDS]


def fill_resources(env: Environment, requested: Sequence[ResourceAmount]) -> list[ResourceAmount]:
    """The job's resources: each of ``env``'s, at least its ``min``; raises
    :class:`ResourcesRefusedError` for an unknown resource or more than its ``max``."""
    amounts = per_job(env)
    wanted: dict[str, float] = {}
    for item in requested:
        if item.id not in amounts:
            raise ResourcesRefusedError(f"No such resource {item.id[:40]!r} in this "
                                        "environment.")
        wanted[item.id] = item.amount
    filled = []
    for rid in RESOURCE_IDS:
        amount = max(wanted.get(rid, amounts[rid]), amounts[rid])
        if amount > amounts[rid]:
            raise ResourcesRefusedError(f"Not enough {rid} resources. Requested "
                                        f"{_number(amount)}, but max is "
                                        f"{_number(amounts[rid])}.")
        filled.append(ResourceAmount(rid, amount))
    return filled


def job_cost(env: Environment, seconds: int) -> Decimal:
    """Ocean Node's cost of one job of ``env`` for ``seconds``: price x ceil(minutes)."""
    return env.price_min * Decimal(-(-seconds // 60))


def describe(env: Environment, *, running: int, free_running: int,
             queued: int) -> dict[str, Any]:
    """The environment as Ocean Node's ``computeEnvironments`` lists it (C2D v2)."""
    resources = [r.to_json() for r in environment_resources(env, running)]
    answer: dict[str, Any] = {
        "id": env.id,
        "description": env.description,
        "consumerAddress": env.consumer_address,
        "storageExpiry": env.storage_expiry,
        "minJobDuration": 0,
        "maxJobDuration": env.max_job_duration,
        "maxJobs": env.max_jobs,
        "fees": {str(env.chain_id): [{"feeToken": env.fee_token,
                                      "prices": resource_prices(env)}]},
        "resources": resources,
        "access": {"addresses": [], "accessLists": None},
        "platform": {"architecture": platform.machine(), "os": platform.system().lower()},
        "enableNetwork": env.allow_network,
        "runningJobs": running,
        "runningfreeJobs": free_running,
        "queuedJobs": queued,
        "queuedFreeJobs": queued if env.free else 0,
        "queMaxWaitTime": 0,
        "queMaxWaitTimeFree": 0,
        "runMaxWaitTime": 0,
        "runMaxWaitTimeFree": 0,
    }
    if env.free:
        answer["free"] = {
            "storageExpiry": env.storage_expiry,
            "minJobDuration": 0,
            "maxJobDuration": env.max_job_duration,
            "maxJobs": env.max_jobs,
            "maxJobsPerConsumer": env.free_job_limit,
            "resources": [{**r, "inUse": r["inUse"] if free_running else 0}
                          for r in resources],
            "access": {"addresses": [], "accessLists": None},
            "allowImageBuild": False,
        }
    return answer
