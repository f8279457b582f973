"""Paid compute through the Escrow contract: quote, lock at start, claim at the end.

The one home of a paid job's payment (C2D v2, as Ocean Node does it). The caller
(the compute start/stop commands) owns the job; this module owns the money:

1. **Quote** (``initializeCompute``): :meth:`EscrowPayments.quote` is the job's cost
   in token units for a duration (``fees.compute_cost``); :meth:`payment_quote` is the
   ``payment`` object Ocean Node answers (escrow address, payee, chain, token, amount
   in base units as a string, ``minLockSeconds``), from which the consumer's client
   (ocean.js 8 ``EscrowContract``) deposits and authorizes the provider.
2. **Lock** (``startCompute``, before the job is queued):
   :meth:`lock_for_job` checks that the payer can pay -- enough available funds in
   the escrow, an authorization of this provider whose amount, lock-seconds and
   lock-count limits leave room -- and refuses otherwise with
   :class:`PaymentRefusedError` (400, a code per reason) *before* anything runs;
   then locks the cost of the requested duration (raised to the environment's
   minimum) for ``maxJobDuration + queueMaxWaitTime + claim_timeout`` seconds. The
   returned :class:`JobPayment` is also kept in the store (``escrow_locks``), so the
   job can be settled from its id alone (:meth:`settle`, :meth:`release`).
3. **Settle** (the job ended, whatever its outcome): :meth:`settle_job` claims the cost
   of the seconds used (clamped to the job's minimum and maximum), so a short job
   pays less and the rest of the lock returns to the payer's available funds. If the
   job never ran, :meth:`release_job` claims nothing, which returns the whole lock
   at once. The claim goes through the persistent :class:`ClaimQueue`: it is
   stored before it is sent, retried until final, never made twice; the call returns
   the claim's row (``pending`` while it is retried).

Nothing here blocks a request on a retry: :meth:`settle_job` makes one attempt; the
composition root runs :meth:`ClaimQueue.retry_due` (or :meth:`ClaimQueue.run`)
periodically for the rest.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tidegate.chain.clients import ChainConfig
from tidegate.chain.escrow import ESCROW_KEY, Claim, EscrowClient, job_id_hash
from tidegate.chain.transactions import TransactionRevertedError, TransactionUnavailableError
from tidegate.errors import BadRequestError, ServiceUnavailableError
from tidegate.fees import compute_cost
from tidegate.fees.claim_queue import ClaimQueue
from tidegate.fees.compute_cost import Pricing, ResourceRequest
from tidegate.stores.base import ClaimRow, Store

CLAIM_TIMEOUT = 3600
"""Seconds a lock outlives the job's maximum duration (Ocean Node's default)."""


class PaymentRefusedError(BadRequestError):
    """The payer cannot pay this job (checked before it runs); ``code`` says why.

    Codes: ``escrow_insufficient_funds``, ``escrow_not_authorized``,
    ``escrow_limit_exceeded``, ``escrow_lock_refused`` (the contract refused the lock),
    ``escrow_token_refused`` (``fees.compute_payments``: a token the environment does
    not take).
    """

    code = "escrow_payment_refused"


class EscrowUnavailableError(ServiceUnavailableError):
    code = "escrow_unavailable"


@dataclass(frozen=True)
class PaymentQuote:
    """The ``payment`` object of a paid ``initializeCompute`` answer."""

    escrow_address: str
    payee: str
    chain_id: int
    token: str
    amount: int
    min_lock_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {"escrowAddress": self.escrow_address, "payee": self.payee,
                "chainId": self.chain_id, "minLockSeconds": self.min_lock_seconds,
                "token": self.token, "amount": str(self.amount)}


@dataclass(frozen=True)
class JobPayment:
    """A paid job's lock: everything :meth:`EscrowPayments.settle_job` needs later.

    ``amount`` is what was locked (base units); ``pricing`` and ``resources`` are the
    job's prices and request as they were at start (a later price change does not
    change what the job pays).
    """

    job_id: str
    payer: str
    pricing: Pricing
    resources: tuple[ResourceRequest, ...]
    max_job_duration: float
    lock_id: int
    amount: int
    decimals: int
    lock_seconds: int
    lock_tx: str

    @property
    def chain_id(self) -> int:
        return self.pricing.chain_id

    @property
    def token(self) -> str:
        return self.pricing.token

    def to_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id, "payer": self.payer, "chainId": self.chain_id,
            "token": self.token,
            "prices": {k: str(v) for k, v in self.pricing.prices.items()},
            "minJobDuration": self.pricing.min_job_duration,
            "resources": [{"id": r.id, "amount": str(r.amount)} for r in self.resources],
            "maxJobDuration": self.max_job_duration, "lockId": str(self.lock_id),
            "amount": str(self.amount), "decimals": self.decimals,
            "lockSeconds": self.lock_seconds, "lockTx": self.lock_tx,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobPayment:
        pricing = Pricing(int(data["chainId"]), str(data["token"]),
                          {k: Decimal(v) for k, v in data["prices"].items()},
                          int(data["minJobDuration"]))
        return cls(str(data["jobId"]), str(data["payer"]), pricing,
                   tuple(ResourceRequest(r["id"], Decimal(r["amount"]))
                         for r in data["resources"]),
                   float(data["maxJobDuration"]), int(data["lockId"]), int(data["amount"]),
                   int(data["decimals"]), int(data["lockSeconds"]), str(data["lockTx"]))


class EscrowPayments:
    """The escrow side of paid compute on every configured chain (see the module)."""

    def __init__(self, escrows: Mapping[int, EscrowClient], queue: ClaimQueue, *,
                 claim_timeout: int = CLAIM_TIMEOUT) -> None:
        self.escrows = escrows
        self.queue = queue
        self.claim_timeout = claim_timeout

    def escrow(self, chain_id: int) -> EscrowClient:
        try:
            return self.escrows[chain_id]
        except KeyError:
            raise EscrowUnavailableError(
                f"Cannot handle payments on chain {chain_id}: no Escrow contract.") from None

    @staticmethod
    def quote(pricing: Pricing, resources: Sequence[ResourceRequest],
              duration: float) -> Decimal:
        """The cost in token units of ``resources`` for ``duration`` seconds."""
        seconds = compute_cost.lock_seconds(pricing, duration)
        return compute_cost.cost(pricing, resources, seconds)

    def lock_expiry(self, max_job_duration: float, queue_max_wait: float = 0) -> int:
        """Seconds a lock lasts: the job's longest run and queue wait, plus the claim time."""
        return int(max_job_duration) + int(queue_max_wait) + self.claim_timeout

    async def payment_quote(self, pricing: Pricing, resources: Sequence[ResourceRequest],
                            max_job_duration: float, queue_max_wait: float = 0) -> PaymentQuote:
        escrow = self.escrow(pricing.chain_id)
        decimals = await escrow.token_decimals(pricing.token)
        amount = compute_cost.to_base_units(
            self.quote(pricing, resources, max_job_duration), decimals)
        return PaymentQuote(escrow.address, escrow.payee, pricing.chain_id, pricing.token,
                            amount, self.lock_expiry(max_job_duration, queue_max_wait))

    async def check_payable(self, payer: str, pricing: Pricing, amount: int,
                            lock_seconds: int) -> None:
        """Raise :class:`PaymentRefusedError` unless ``payer`` can lock ``amount`` now."""
        escrow = self.escrow(pricing.chain_id)
        funds = await escrow.funds(payer, pricing.token)
        if funds.available < amount:
            raise PaymentRefusedError(
                f"Insufficient escrow funds: {amount} needed, {funds.available} available "
                "(deposit more in the Escrow contract).", code="escrow_insufficient_funds")
        auth = await escrow.authorization(payer, pricing.token)
        if auth is None:
            raise PaymentRefusedError(
                f"The payer has not authorized {escrow.payee} in the Escrow contract.",
                code="escrow_not_authorized")
        if auth.current_locked_amount + amount > auth.max_locked_amount:
            raise PaymentRefusedError(
                f"The escrow authorization allows {auth.max_locked_amount} locked, "
                f"{auth.current_locked_amount} already is and {amount} is needed.",
                code="escrow_limit_exceeded")
        if auth.max_lock_seconds < lock_seconds:
            raise PaymentRefusedError(
                f"The escrow authorization allows locks of {auth.max_lock_seconds} s, "
                f"this job needs {lock_seconds} s.", code="escrow_limit_exceeded")
        if auth.current_locks + 1 > auth.max_lock_counts:
            raise PaymentRefusedError(
                f"The escrow authorization allows {auth.max_lock_counts} locks at once "
                "and all are in use.", code="escrow_limit_exceeded")

    async def lock_for_job(self, job_id: str, payer: str, pricing: Pricing,
                           resources: Sequence[ResourceRequest], max_job_duration: float,
                           queue_max_wait: float = 0) -> JobPayment:
        """Check the payer can pay, then lock the job's maximum cost (see the module).

        Raises :class:`PaymentRefusedError` (nothing locked) or a 503 when the chain
        cannot be reached. If the lock's outcome is unknown (no receipt), a release
        is queued for it, so a lock made after all is returned to the payer.
        """
        escrow = self.escrow(pricing.chain_id)
        decimals = await escrow.token_decimals(pricing.token)
        amount = compute_cost.to_base_units(
            self.quote(pricing, resources, max_job_duration), decimals)
        lock_seconds = self.lock_expiry(max_job_duration, queue_max_wait)
        await self.check_payable(payer, pricing, amount, lock_seconds)
        lock_id = job_id_hash(job_id)
        try:
            lock_tx = await escrow.create_lock(lock_id, pricing.token, payer, amount,
                                               lock_seconds)
        except TransactionRevertedError as exc:
            raise PaymentRefusedError(f"The Escrow contract refused the lock: {exc.reason}.",
                                      code="escrow_lock_refused") from exc
        except TransactionUnavailableError:
            await self.queue.enqueue(job_id, pricing.chain_id,
                                     Claim(lock_id, pricing.token, payer, 0))
            raise
        payment = JobPayment(job_id, payer, pricing, tuple(resources),
                             float(max_job_duration), lock_id, amount, decimals,
                             lock_seconds, lock_tx)
        try:
            await self.queue.store.put_escrow_lock(job_id, json.dumps(payment.to_json()),
                                                   int(self.queue.clock() * 1000))
        except Exception:
            # Locked but not remembered: return the lock rather than run a job whose
            # payment could not be settled by its id (if even that cannot be queued, the
            # lock expires and the sweep returns it).
            with contextlib.suppress(Exception):
                await self.queue.enqueue(job_id, pricing.chain_id,
                                         Claim(lock_id, pricing.token, payer, 0))
            raise
        return payment

    async def payment_of(self, job_id: str) -> JobPayment | None:
        """The lock :meth:`lock_for_job` made for ``job_id`` (kept in the store), or None."""
        document = await self.queue.store.get_escrow_lock(job_id)
        return None if document is None else JobPayment.from_json(json.loads(document))

    async def settle(self, job_id: str, used_seconds: float) -> ClaimRow | None:
        """:meth:`settle_job` by job id; None for a job that has no lock (free, unpaid)."""
        payment = await self.payment_of(job_id)
        return None if payment is None else await self.settle_job(payment, used_seconds)

    async def release(self, job_id: str) -> ClaimRow | None:
        """:meth:`release_job` by job id; None for a job that has no lock."""
        payment = await self.payment_of(job_id)
        return None if payment is None else await self.release_job(payment)

    def claim_amount(self, payment: JobPayment, used_seconds: float) -> int:
        """Base units owed for ``used_seconds`` (clamped; never more than was locked)."""
        seconds = compute_cost.claim_seconds(payment.pricing, used_seconds,
                                             payment.max_job_duration)
        owed = compute_cost.to_base_units(
            compute_cost.cost(payment.pricing, payment.resources, seconds), payment.decimals)
        return min(owed, payment.amount)

    async def settle_job(self, payment: JobPayment, used_seconds: float) -> ClaimRow:
        """Claim what the job used; the rest of the lock returns to the payer.

        The claim is queued first, then tried once; the row returned says whether it
        is final (``claimed``/``expired``/``gone``) or still ``pending`` (retried by the
        queue). Calling it again for the same job changes nothing. It raises only if
        the store is unavailable (503), and then nothing was queued: the caller must
        call it again (e.g. for every ended job whose record has no claim yet).
        """
        amount = self.claim_amount(payment, used_seconds)
        proof = json.dumps({"jobId": payment.job_id, "usedSeconds": used_seconds,
                            "amount": str(amount)}, separators=(",", ":")).encode()
        return await self._claim(payment, amount, proof)

    async def release_job(self, payment: JobPayment) -> ClaimRow:
        """The job never ran: claim nothing, so the whole lock returns to the payer now."""
        return await self._claim(payment, 0, b"")

    async def _claim(self, payment: JobPayment, amount: int, proof: bytes) -> ClaimRow:
        claim = Claim(payment.lock_id, payment.token, payment.payer, amount, proof)
        await self.queue.enqueue(payment.job_id, payment.chain_id, claim)
        row = await self.queue.attempt(payment.job_id)
        assert row is not None  # just queued; rows are never deleted
        return row


def build_escrow_payments(chains: Iterable[ChainConfig], store: Store, *,
                          claim_timeout: int = CLAIM_TIMEOUT) -> EscrowPayments:
    """The composition root's one :class:`EscrowPayments`: an escrow client (and its
    provider sender) for every chain whose address file names an ``Escrow``, one claim
    queue over ``store``. Run ``payments.queue.run(interval, stop)`` beside it."""
    escrows = {chain.chain_id: EscrowClient.for_chain(chain) for chain in chains
               if ESCROW_KEY in chain.addresses}
    return EscrowPayments(escrows, ClaimQueue(store, escrows), claim_timeout=claim_timeout)
