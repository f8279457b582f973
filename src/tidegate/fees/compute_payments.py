"""Escrow payments behind the compute v2 start's payments seam.

``commands/compute/node_start.py`` (the compute v2 adapter) asks a ``ComputePayments``
to ``lock(job)`` once every other check of a paid start passed, before the engine
starts the job, and ``cancel(job, lock_id)`` if the engine then refuses it; the job's
end is settled by job id (:meth:`EscrowComputePayments.settle` / ``release``, called
by ``commands/compute/settle.py``). :class:`EscrowComputePayments`
is that object over :class:`~tidegate.fees.escrow_payments.EscrowPayments`; it is
typed against the attributes it reads (:class:`PaidJobLike`), not the command's
classes, so this domain package imports no outer layer.

Prices: an environment charges ``priceMin`` fee-token units per minute for a whole
job; in C2D v2 terms that price is carried by ``cpu`` (``priceMin / cpuNumber`` per
CPU per minute, every other resource free), so a job of ``cpuNumber`` CPUs costs
``priceMin × ceil(minutes)`` -- the same rule as the compute adapter's quote.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any, Protocol

from tidegate.errors import TidegateError
from tidegate.fees.compute_cost import Pricing, ResourceRequest, decimal_of
from tidegate.fees.escrow_payments import EscrowPayments, PaymentRefusedError
from tidegate.stores.base import ClaimRow

logger = logging.getLogger(__name__)


class EnvironmentLike(Protocol):
    """What is read of a compute environment (``compute.environments.Environment``)."""

    @property
    def chain_id(self) -> int: ...
    @property
    def fee_token(self) -> str: ...
    @property
    def price_min(self) -> Decimal: ...
    @property
    def cpu_number(self) -> int: ...


class ResourceLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def amount(self) -> float: ...


class PaidJobLike(Protocol):
    """What is read of the compute adapter's ``PaidJob``."""

    @property
    def job_id(self) -> str: ...
    @property
    def consumer(self) -> str: ...
    @property
    def environment(self) -> EnvironmentLike: ...
    @property
    def chain_id(self) -> int: ...
    @property
    def token(self) -> str: ...
    @property
    def resources(self) -> Sequence[ResourceLike]: ...
    @property
    def seconds(self) -> int: ...
    @property
    def queue_seconds(self) -> int: ...


def environment_pricing(env: EnvironmentLike) -> Pricing:
    """``env``'s prices per resource (see the module)."""
    with localcontext(prec=100):  # exact enough that rounding to base units undoes it
        cpu_price = Decimal(env.price_min) / Decimal(max(env.cpu_number, 1))
    return Pricing(env.chain_id, env.fee_token, {"cpu": cpu_price})


def _priced(job: PaidJobLike) -> tuple[Pricing, tuple[ResourceRequest, ...]]:
    """The job's prices and request, once its environment takes its token and chain."""
    env = job.environment
    if job.chain_id != env.chain_id or job.token.lower() != env.fee_token.lower():
        raise PaymentRefusedError(
            f"This compute environment does not accept payments on chain "
            f"{job.chain_id} in token {job.token[:42]}.", code="escrow_token_refused")
    resources = tuple(ResourceRequest(r.id, decimal_of(r.amount, f"amount of {r.id}"))
                      for r in job.resources)
    return environment_pricing(env), resources


class EscrowComputePayments:
    """The compute v2 start's ``ComputePayments``: lock at start, settle by job id."""

    def __init__(self, payments: EscrowPayments) -> None:
        self.payments = payments

    async def lock(self, job: PaidJobLike) -> str:
        """Lock the job's cost for its maximum duration; the lock's transaction hash.

        Raises :class:`PaymentRefusedError` (400) when the environment does not take
        that token on that chain or the payer cannot pay, a 503 when the chain or the
        escrow is unavailable.
        """
        pricing, resources = _priced(job)
        payment = await self.payments.lock_for_job(
            job.job_id, job.consumer, pricing, resources, job.seconds,
            queue_max_wait=job.queue_seconds)
        return payment.lock_tx

    async def quote(self, job: PaidJobLike) -> dict[str, Any]:
        """``initializeCompute``'s ``payment`` object: the cost of the job's maximum
        duration in base units, the escrow, the payee, ``minLockSeconds``. Raises as
        :meth:`lock` for a token the environment does not take, 503 without an Escrow
        on the chain."""
        pricing, resources = _priced(job)
        quote = await self.payments.payment_quote(pricing, resources, job.seconds,
                                                  queue_max_wait=job.queue_seconds)
        return quote.to_json()

    async def cancel(self, job: PaidJobLike, lock_id: str) -> None:
        """The engine refused the job after :meth:`lock` (nothing ran): release the lock.

        ``lock_id`` (the lock's transaction hash) is not needed: the lock is kept in the
        store by job id. A failure to queue the release is not raised over the engine's
        own error: the lock then expires and the claim queue's sweep returns it.
        """
        del lock_id
        try:
            await self.payments.release(job.job_id)
        except TidegateError as exc:
            logger.warning("could not release the escrow lock of refused job %s: %s",
                           job.job_id, exc.message)

    async def settle(self, job_id: str, used_seconds: float) -> ClaimRow | None:
        """The job ended after ``used_seconds`` of its algorithm's run: claim that much."""
        return await self.payments.settle(job_id, used_seconds)

    async def release(self, job_id: str) -> ClaimRow | None:
        """The job was locked but never ran: return the whole lock to the payer."""
        return await self.payments.release(job_id)
