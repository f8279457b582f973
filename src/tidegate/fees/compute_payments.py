"""Escrow payments behind the compute v2 start's payments seam.

``commands/compute/node_start.py`` (the compute v2 adapter) asks a ``ComputePayments``
to ``lock(job)`` once every other check of a paid start passed, before the engine
starts the job, and leaves the claim at the end to it. :class:`EscrowComputePayments`
is that object over :class:`~tidegate.fees.escrow_payments.EscrowPayments`; it is
typed against the attributes it reads (:class:`PaidJobLike`), not the command's
classes, so this domain package imports no outer layer.

Prices: an environment charges ``priceMin`` fee-token units per minute for a whole
job; in C2D v2 terms that price is carried by ``cpu`` (``priceMin / cpuNumber`` per
CPU per minute, every other resource free), so a job of ``cpuNumber`` CPUs costs
``priceMin × ceil(minutes)`` -- the same rule as the compute adapter's quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Protocol

from tidegate.fees.compute_cost import Pricing, ResourceRequest, decimal_of
from tidegate.fees.escrow_payments import EscrowPayments, PaymentRefusedError
from tidegate.stores.base import ClaimRow


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


def environment_pricing(env: EnvironmentLike) -> Pricing:
    """``env``'s prices per resource (see the module)."""
    with localcontext(prec=100):  # exact enough that rounding to base units undoes it
        cpu_price = Decimal(env.price_min) / Decimal(max(env.cpu_number, 1))
    return Pricing(env.chain_id, env.fee_token, {"cpu": cpu_price})


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
        env = job.environment
        if job.chain_id != env.chain_id or job.token.lower() != env.fee_token.lower():
            raise PaymentRefusedError(
                f"This compute environment does not accept payments on chain "
                f"{job.chain_id} in token {job.token[:42]}.", code="escrow_token_refused")
        resources = tuple(ResourceRequest(r.id, decimal_of(r.amount, f"amount of {r.id}"))
                          for r in job.resources)
        payment = await self.payments.lock_for_job(
            job.job_id, job.consumer, environment_pricing(env), resources, job.seconds)
        return payment.lock_tx

    async def settle(self, job_id: str, used_seconds: float) -> ClaimRow | None:
        """The job ended after ``used_seconds`` of run (and build): claim that much."""
        return await self.payments.settle(job_id, used_seconds)

    async def release(self, job_id: str) -> ClaimRow | None:
        """The job was locked but never ran: return the whole lock to the payer."""
        return await self.payments.release(job_id)
