"""Compute start in Ocean Node's protocol (C2D v2): free jobs, and paid jobs through a
payments object.

Order of checks: the signature (``consumerAddress + nonce + command``, or a token; the
nonce is consumed), the environment, the payment path (free: the environment offers
free compute; paid: a :class:`ComputePayments` is plugged in), the resources and the
duration, the algorithm and its container, then per input: a file object is checked
as a file object; a published dataset needs its order (``transferTxId``) and its
compute rules must admit the algorithm, exactly as the classic start (Ocean Node runs
published datasets for free without an order: Tidegate does not, a dataset's price and
trust rules hold on every path); a published algorithm needs its order too. Then the
paid job's cost is locked, or the free-job limit per consumer is checked, and the
engine starts the job.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

from tidegate.assets.orders import ValidatedOrder
from tidegate.auth.request_auth import SignedRequest
from tidegate.chain.clients import ChainConfig
from tidegate.commands.asset_services import service_files
from tidegate.commands.compute.checks import AlgorithmRef
from tidegate.commands.compute.context import (
    AlgorithmRequest,
    ComputeContext,
    DatasetRef,
    dataset_service,
    find_environment,
    resolve_algorithm,
)
from tidegate.commands.compute.start import job_algorithm, validate_order
from tidegate.compute.engines.base import JobInput, JobSpec
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import FINISHED, JobRecord
from tidegate.compute.resources import ResourceAmount, fill_resources, job_cost
from tidegate.errors import BadRequestError, TidegateError
from tidegate.files.objects import parse_file_object

#: Per engine: serialises the free-job limit's check and the job's creation in this
#: process, so two concurrent starts of one consumer cannot both pass the limit.
_FREE_ADMISSION: Final[weakref.WeakKeyDictionary[Any, asyncio.Lock]] = \
    weakref.WeakKeyDictionary()


class PaymentUnavailableError(TidegateError):
    """Paid compute of Ocean Node's protocol needs escrow payments, not configured (402)."""

    status = 402
    code = "escrow_unavailable"


class FreeComputeRefusedError(BadRequestError):
    code = "free_compute_refused"


@dataclass(frozen=True)
class NodeDataset:
    """One input: a published dataset (``did`` + ``service_id``, ordered in
    ``transfer_tx``) or a ``file_object`` (the consumer's own file)."""

    did: str | None = None
    service_id: str | None = None
    transfer_tx: str | None = None
    file_object: Mapping[str, Any] | None = None
    userdata: dict[str, Any] | None = None


@dataclass(frozen=True)
class PaymentRequest:
    """``payment`` of a paid start: the chain and token the consumer pays with."""

    chain_id: int
    token: str


@dataclass(frozen=True)
class StartNodeCompute:
    """Run ``algorithm`` on ``datasets`` (possibly none) in ``environment`` for the
    signer of ``proof``, with ``resources`` for at most ``max_duration`` seconds (None:
    the environment's maximum); ``payment`` None: free compute. ``queue_max_wait``:
    seconds the job may wait for a free slot before it is ended unrun (0: no limit)."""

    proof: SignedRequest
    environment: str
    algorithm: AlgorithmRequest
    datasets: list[NodeDataset] = field(default_factory=list)
    resources: list[ResourceAmount] = field(default_factory=list)
    max_duration: int | None = None
    payment: PaymentRequest | None = None
    queue_max_wait: int = 0


@dataclass(frozen=True)
class PaidJob:
    """What a paid job costs: ``cost`` (fee-token units, Ocean Node's rule: price x
    amount x ceil(minutes)) of ``token`` on ``chain_id``, for ``seconds`` at most; the
    lock also lasts ``queue_seconds`` (its ``queueMaxWaitTime``) longer."""

    job_id: str
    consumer: str
    environment: Environment
    chain_id: int
    token: str
    resources: tuple[ResourceAmount, ...]
    seconds: int
    cost: Decimal
    queue_seconds: int = 0


class ComputePayments(Protocol):
    """SEAM (escrow, branch ``escrow``): pays for a v2 job before it runs.

    :func:`start_node_compute` calls :meth:`lock` once every other check passed and
    before the engine starts the job; an exception refuses the job (nothing runs). If
    the engine then refuses the job, :meth:`cancel` releases the lock. The claim when
    the job ends is the payments object's own (it is handed the job id; the job's
    record carries ``agreementId`` = the lock id, ``resources`` and ``maxJobDuration``).
    """

    async def lock(self, job: PaidJob) -> str:
        """Lock ``job.cost`` from the consumer's escrow deposit; return the lock's id
        (a transaction hash: the job's ``agreementId``). Raise a TidegateError (402 or
        400 with a stable code) when the job cannot be paid."""

    async def cancel(self, job: PaidJob, lock_id: str) -> None:
        """Release the lock of a job the engine then refused to start (nothing ran)."""

    async def quote(self, job: PaidJob) -> dict[str, Any]:
        """``initializeCompute``'s ``payment`` object for ``job`` (its ``job_id`` is
        empty: no job exists yet): what the consumer must deposit and authorize. Raise
        as :meth:`lock` for a token or chain the environment does not take."""


async def _free_slot(ctx: ComputeContext, consumer: str, env: Environment) -> None:
    """Refuse a free job beyond the environment's per-consumer limit."""
    mine = [r for r in await ctx.engine.jobs(consumer, None, None)
            if r.free and r.environment == env.id and r.status not in FINISHED]
    if len(mine) >= env.free_job_limit:
        raise FreeComputeRefusedError(
            f"Too many running free jobs: at most {env.free_job_limit} per consumer in "
            "this environment.", code="too_many_free_jobs")


def job_duration(env: Environment, requested: int | None) -> int:
    """The job's maximum run in seconds: ``requested``, capped by the environment's."""
    return env.max_job_duration if not requested else min(requested, env.max_job_duration)


async def _inputs(ctx: ComputeContext, cmd: StartNodeCompute, consumer: str,
                  env: Environment, algorithm: AlgorithmRef,
                  orders: list[tuple[ValidatedOrder, ChainConfig]]) -> list[JobInput]:
    inputs: list[JobInput] = []
    for index, dataset in enumerate(cmd.datasets):
        if dataset.file_object is not None:
            parse_file_object(dict(dataset.file_object), dataset.userdata)  # 400 if bad
            inputs.append(JobInput(did=f"fileObject{index}", service_id="", transfer_tx="",
                                   ddo={}, files=[dict(dataset.file_object)],
                                   userdata=dataset.userdata))
            continue
        assert dataset.did is not None and dataset.service_id is not None  # the model's
        found = await dataset_service(ctx, index, _ref(dataset), consumer, algorithm)
        orders.append((await validate_order(ctx, found, dataset.transfer_tx, consumer, env,
                                            f"datasets.{index}.transferTxId"), found.chain))
        inputs.append(JobInput(did=found.asset.did, service_id=found.service.id,
                               transfer_tx=str(dataset.transfer_tx), ddo=found.asset.raw,
                               files=await service_files(found), userdata=dataset.userdata))
    return inputs


def _ref(dataset: NodeDataset) -> DatasetRef:
    return DatasetRef(str(dataset.did), str(dataset.service_id), dataset.transfer_tx,
                      dataset.userdata)


async def start_node_compute(ctx: ComputeContext, cmd: StartNodeCompute,
                             payments: ComputePayments | None = None) -> JobRecord:
    """The started job's first record. ``payments`` is the seam for paid jobs: without
    it a paid start (``cmd.payment``) is refused with 402 ``escrow_unavailable``."""
    consumer = await ctx.authenticator.authenticate(cmd.proof)
    env = await find_environment(ctx.engine, cmd.environment)
    if cmd.payment is not None and payments is None:
        raise PaymentUnavailableError(
            "Paid compute of Ocean Node's protocol (escrow) is not available on this "
            "provider yet; use free compute, or the classic compute start with orders.")
    if cmd.payment is None and not env.free:
        raise FreeComputeRefusedError("This environment offers no free compute.",
                                      code="free_compute_unavailable")
    resources = fill_resources(env, cmd.resources)
    seconds = job_duration(env, cmd.max_duration)
    algorithm = await resolve_algorithm(ctx, cmd.algorithm)
    ctx.engine.check_container(algorithm.container)
    orders: list[tuple[ValidatedOrder, ChainConfig]] = []
    inputs = await _inputs(ctx, cmd, consumer, env, algorithm, orders)
    job_alg = await job_algorithm(ctx, cmd.algorithm, algorithm, consumer, env, orders)
    job_id = uuid.uuid4().hex
    agreement = orders[0][0].order_tx if orders else ""
    paid: PaidJob | None = None
    if cmd.payment is not None:
        assert payments is not None
        paid = PaidJob(job_id=job_id, consumer=consumer, environment=env,
                       chain_id=cmd.payment.chain_id, token=cmd.payment.token,
                       resources=tuple(resources), seconds=seconds,
                       cost=job_cost(env, seconds), queue_seconds=cmd.queue_max_wait)
        agreement = await payments.lock(paid)
    spec = JobSpec(job_id=job_id, owner=consumer, environment=env, chain_id=env.chain_id,
                   agreement_id=agreement, inputs=inputs, algorithm=job_alg,
                   max_duration=seconds, allow_network=env.allow_network, protocol="node",
                   resources=tuple((r.id, r.amount) for r in resources),
                   free=cmd.payment is None, queue_max_wait=cmd.queue_max_wait)
    if cmd.payment is not None:
        assert payments is not None and paid is not None
        try:
            return await ctx.engine.start(spec)
        except BaseException:
            await payments.cancel(paid, agreement)
            raise
    async with _FREE_ADMISSION.setdefault(ctx.engine, asyncio.Lock()):
        await _free_slot(ctx, consumer, env)
        return await ctx.engine.start(spec)
